"""The scenario harness every adapter's tests share (after Mixer's pkg/adapter/test).

- `run_async`: runs an `async def` test in a fresh loop, bounded, failing on leaked tasks;
- `new_env`, `build`, `build_handler`, `open_handler`, `config_errors`: drive a builder the
  way the runtime does (params merged over `default_params`, `validate()`, `build(env)`)
  and fail loudly on config errors;
- `FakeClock`: injectable monotonic time for window and dedup tests;
- `eventually`: a bounded wait for something that becomes true (never a timing assertion);
- `check_supports_templates`: the handler has the method of every template INFO claims;
- `check_quota_conformance`: the quota semantics every quota adapter must share
  (all-or-nothing, best effort, dedup, per-dimension keys, first matching override).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import prometheus_client

from mixer.adapter import api
from mixer.template.templates import Quota
from pkg.testing.aio import run_async as run_async  # re-exported for adapters' tests
from pkg.testing.wait import eventually as eventually

# Async tests without a plugin.


@dataclasses.dataclass
class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# Driving builders the way the runtime does.


def new_env(name: str = "adapter-test") -> api.Env:
    return api.Env(
        logger=logging.getLogger(f"mixer.adapters.{name}"),
        metrics=prometheus_client.CollectorRegistry(),
    )


def merged_params(info: api.AdapterInfo, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params the runtime hands a builder: the handler's over the adapter's defaults."""
    return {**info.default_params, **(params or {})}


def config_errors(
    info: api.AdapterInfo,
    params: Mapping[str, Any] | None = None,
    instances: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """What `validate()` says about these params, as `field: message` strings."""
    builder = info.new_builder(merged_params(info, params), instances or {})
    return [str(error) for error in builder.validate()]


async def build(builder: api.Builder, env: api.Env | None = None) -> Any:
    """validate() then build(env); config errors fail the test with every error listed."""
    errors = builder.validate()
    assert not errors, "config errors: " + "; ".join(str(e) for e in errors)
    return await builder.build(env or new_env())


async def build_handler(
    info: api.AdapterInfo,
    params: Mapping[str, Any] | None = None,
    instances: Mapping[str, Sequence[str]] | None = None,
    *,
    env: api.Env | None = None,
) -> Any:
    handler = await build(info.new_builder(merged_params(info, params), instances or {}), env)
    check_supports_templates(info, handler)
    return handler


@contextlib.asynccontextmanager
async def open_handler(
    info: api.AdapterInfo,
    params: Mapping[str, Any] | None = None,
    instances: Mapping[str, Sequence[str]] | None = None,
    *,
    env: api.Env | None = None,
) -> AsyncIterator[Any]:
    """A built handler, closed on exit whatever the test did."""
    handler = await build_handler(info, params, instances, env=env)
    try:
        yield handler
    finally:
        await handler.close()


def check_supports_templates(info: api.AdapterInfo, handler: Any) -> None:
    assert callable(getattr(handler, "close", None)), f"{info.name}: handler has no close()"
    for template in info.templates:
        method = api.HANDLER_METHODS[template]
        assert callable(getattr(handler, method, None)), f"{info.name}: no {method} for {template}"


# Quota conformance.

QUOTA_INSTANCE = "requestcount.istio-system"
QUOTA_NAME = "requestcount.instance.istio-system"

OpenQuotaHandler = Callable[[Mapping[str, Any]], contextlib.AbstractAsyncContextManager[Any]]


@dataclasses.dataclass
class QuotaDriver:
    """Sends quota requests to one handler; each driver has its own dimension values."""

    handler: Any
    run: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:8])
    _ids: Any = dataclasses.field(default_factory=itertools.count)

    def instance(self, **dimensions: Any) -> Quota:
        return Quota(name=QUOTA_INSTANCE, dimensions={"run": self.run, **dimensions})

    async def alloc(
        self, amount: int, *, best_effort: bool = False, dedup: str | None = None, **dims: Any
    ) -> api.QuotaResult:
        dedup_id = dedup if dedup is not None else f"{self.run}-{next(self._ids)}"
        args = api.QuotaArgs(deduplication_id=dedup_id, amount=amount, best_effort=best_effort)
        return await self.handler.handle_quota(self.instance(**dims), args)


def quota_params(max_amount: int, overrides: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Common-shape params for the conformance suite: one rate-limit quota, a long window."""
    quota: dict[str, Any] = {"name": QUOTA_NAME, "maxAmount": max_amount, "validDuration": "1h"}
    if overrides:
        quota["overrides"] = [dict(o) for o in overrides]
    return {"quotas": [quota]}


async def check_quota_conformance(open_quota_handler: OpenQuotaHandler) -> None:
    """Runs every shared quota check against handlers the adapter's test opens.

    `open_quota_handler(params)` gets params like `quota_params(...)` (quotas[] with name,
    maxAmount, validDuration, overrides[] {dimensions, maxAmount}) and may add its own
    fields (a Redis URL); it yields a built handler and closes it.
    """
    for check in QUOTA_CHECKS:
        try:
            await check(open_quota_handler)
        except AssertionError as error:
            raise AssertionError(f"{check.__name__}: {error}") from error


async def check_all_or_nothing(open_quota_handler: OpenQuotaHandler) -> None:
    async with open_quota_handler(quota_params(5)) as handler:
        q = QuotaDriver(handler)
        first = await q.alloc(3)
        assert (first.granted_amount, first.status_code) == (3, api.OK), first
        assert first.valid_duration > datetime.timedelta(0), first
        denied = await q.alloc(3)
        assert denied.granted_amount == 0, denied
        assert denied.status_code == api.RESOURCE_EXHAUSTED, denied
        rest = await q.alloc(2)
        assert rest.granted_amount == 2, rest


async def check_best_effort(open_quota_handler: OpenQuotaHandler) -> None:
    async with open_quota_handler(quota_params(5)) as handler:
        q = QuotaDriver(handler)
        assert (await q.alloc(3, best_effort=True)).granted_amount == 3
        partial = await q.alloc(3, best_effort=True)
        assert (partial.granted_amount, partial.status_code) == (2, api.OK), partial
        none = await q.alloc(1, best_effort=True)
        assert none.granted_amount == 0, none
        assert none.status_code == api.RESOURCE_EXHAUSTED, none


async def check_deduplication(open_quota_handler: OpenQuotaHandler) -> None:
    async with open_quota_handler(quota_params(5)) as handler:
        q = QuotaDriver(handler)
        first = await q.alloc(2, dedup="retry-1")
        again = await q.alloc(2, dedup="retry-1")
        assert first.granted_amount == again.granted_amount == 2, (first, again)
        # The retry was not charged: the other 3 are still there.
        assert (await q.alloc(3)).granted_amount == 3
        denied = await q.alloc(1, dedup="retry-2")
        assert denied.granted_amount == 0, denied


async def check_dimensions_are_separate(open_quota_handler: OpenQuotaHandler) -> None:
    async with open_quota_handler(quota_params(2)) as handler:
        q = QuotaDriver(handler)
        assert (await q.alloc(2, source="reviews")).granted_amount == 2
        assert (await q.alloc(1, source="reviews")).granted_amount == 0
        assert (await q.alloc(2, source="productpage")).granted_amount == 2


async def check_first_matching_override(open_quota_handler: OpenQuotaHandler) -> None:
    overrides = [
        {"dimensions": {"destination": "ratings", "source": "reviews"}, "maxAmount": 1},
        {"dimensions": {"destination": "ratings"}, "maxAmount": 3},
    ]
    async with open_quota_handler(quota_params(10, overrides)) as handler:
        q = QuotaDriver(handler)
        assert (await q.alloc(2, destination="ratings", source="reviews")).granted_amount == 0
        assert (await q.alloc(1, destination="ratings", source="reviews")).granted_amount == 1
        assert (await q.alloc(4, destination="ratings", source="details")).granted_amount == 0
        assert (await q.alloc(3, destination="ratings", source="details")).granted_amount == 3
        assert (await q.alloc(10, destination="details", source="reviews")).granted_amount == 10


QUOTA_CHECKS: tuple[Callable[[OpenQuotaHandler], Awaitable[None]], ...] = (
    check_all_or_nothing,
    check_best_effort,
    check_deduplication,
    check_dimensions_are_separate,
    check_first_matching_override,
)
