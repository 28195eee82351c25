"""The harness itself: leaks and hangs fail tests, config errors fail builds, and the quota
conformance suite catches a handler that breaks the shared semantics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from mixer.adapter import api, testing


def test_run_async_fails_a_test_that_leaks_a_task():
    @testing.run_async
    async def leaky() -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(30), name="leaked sleeper")

    with pytest.raises(AssertionError, match="leaked sleeper"):
        leaky()


def test_run_async_bounds_a_test():
    @testing.run_async(timeout=0.05)
    async def stuck() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        stuck()


def test_eventually_gives_up():
    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="not reached within"):
        testing.run_async(testing.eventually)(never, timeout=0.1)


class _Builder:
    def __init__(self, params: Mapping[str, Any], instances: Any) -> None:
        self.params = params

    def validate(self) -> list[api.ConfigError]:
        return [api.ConfigError("x", "bad")] if self.params.get("bad") else []

    async def build(self, env: api.Env) -> Any:
        return _Unlimited()


class _Unlimited:
    """A quota handler that grants everything: the conformance suite must reject it."""

    async def handle_quota(self, instance: Any, args: api.QuotaArgs) -> api.QuotaResult:
        return api.QuotaResult(args.amount, valid_duration=api.DEFAULT_VALID_DURATION)

    async def close(self) -> None:
        return None


INFO = api.AdapterInfo("fake", "test double", ("quota",), _Builder, {"default": 1})


@testing.run_async
async def test_build_handler_merges_defaults_and_fails_on_config_errors():
    assert testing.merged_params(INFO, {"bad": True}) == {"default": 1, "bad": True}
    assert testing.config_errors(INFO, {"bad": True}) == ["x: bad"]
    with pytest.raises(AssertionError, match="x: bad"):
        await testing.build_handler(INFO, {"bad": True})
    async with testing.open_handler(INFO) as handler:
        assert isinstance(handler, _Unlimited)


def test_conformance_rejects_an_unlimited_quota():
    @contextlib.asynccontextmanager
    async def open_unlimited(params: Mapping[str, Any]) -> AsyncIterator[Any]:
        yield _Unlimited()

    with pytest.raises(AssertionError, match="check_all_or_nothing"):
        testing.run_async(testing.check_quota_conformance)(open_unlimited)
