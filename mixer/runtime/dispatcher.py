"""Requests through the current snapshot: which rules match, which adapters hear of it.

Check combines every matching CHECK action (the first refusal wins; the answer may be
cached for the shortest duration and use count any adapter allowed); quotas go to the
QUOTA actions whose instance the client named; Report sends each REPORT handler one
batch per request. Every adapter call goes through `safecall`: bounded in time, its
failures counted, and a failed check answered per the handler's fail-open setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Collection, Sequence
from typing import Any

from mixer.adapter import api as adapter_api
from mixer.runtime import refs
from mixer.runtime.reuse import ReportEvaluator
from mixer.runtime.snapshot import CompiledRule, HandlerEntry, Snapshot
from mixer.template.templates import Variety
from pkg.lang.errors import EvalError

log = logging.getLogger("mixer.dispatch")

# Attributes that place a request in a namespace (rules outside the default namespace
# apply only there), in the order Istio's versions used them.
_NAMESPACE_ATTRIBUTES = ("destination.namespace", "destination.service.namespace")


@dataclasses.dataclass
class Counters:
    checks: int = 0
    reports: int = 0
    quotas: int = 0
    adapter_calls: int = 0
    adapter_errors: int = 0
    adapter_timeouts: int = 0
    match_errors: int = 0
    instance_errors: int = 0


class Dispatcher:
    def __init__(self, *, adapter_timeout: float = 1.0) -> None:
        self.adapter_timeout = adapter_timeout
        self.counters = Counters()

    async def check(self, snapshot: Snapshot, bag: Any) -> adapter_api.CheckResult:
        self.counters.checks += 1
        results: list[adapter_api.CheckResult] = []
        for rule in self._matching(snapshot, bag, Variety.CHECK):
            for action in rule.actions:
                for instance in action.instances:
                    if instance.template.variety is not Variety.CHECK:
                        continue
                    built = self._build(instance, bag)
                    if built is None:
                        continue
                    method = adapter_api.HANDLER_METHODS[instance.template.name]
                    results.append(await self._check_call(action.handler, method, built))
        return _combine(results)

    async def quota(
        self, snapshot: Snapshot, bag: Any, quota: str, args: adapter_api.QuotaArgs
    ) -> adapter_api.QuotaResult:
        """A quota no rule speaks for is granted in full, as Istio does."""
        self.counters.quotas += 1
        for rule in self._matching(snapshot, bag, Variety.QUOTA):
            for action in rule.actions:
                for instance in action.instances:
                    if instance.template.variety is not Variety.QUOTA or not _names(
                        instance.name, instance.namespace, quota
                    ):
                        continue
                    built = self._build(instance, bag)
                    if built is None:
                        continue
                    return await self._quota_call(action.handler, built, args)
        return adapter_api.QuotaResult(
            granted_amount=args.amount, valid_duration=adapter_api.DEFAULT_VALID_DURATION
        )

    async def report(
        self,
        snapshot: Snapshot,
        bags: Sequence[Any],
        deltas: Sequence[Collection[str] | None] | None = None,
    ) -> None:
        """`deltas[i]`: the attributes entry i set anew (`decode_report_deltas`), None where it
        stands alone. With them, what an entry's delta leaves alone is not evaluated again
        (reuse.py); without them every entry is evaluated in full. Either way the adapters
        get the same instances."""
        self.counters.reports += 1
        counters = self.counters
        evaluator = ReportEvaluator()
        batches: dict[tuple[str, str], tuple[HandlerEntry, list[Any]]] = {}
        for i, bag in enumerate(bags):
            evaluator.begin(None if deltas is None else deltas[i])
            for rule in snapshot.rules_for(_namespace(bag), Variety.REPORT):
                matched = evaluator.match(rule, bag)
                if not matched:
                    if matched is None:
                        # An attribute the match needs is absent: the rule does not apply (Istio).
                        counters.match_errors += 1
                    continue
                for target in rule.report_instances:
                    try:
                        built = evaluator.build(target.instance, bag)
                    except EvalError as error:
                        counters.instance_errors += 1
                        log.debug("instance %s not built: %s", target.instance.qualified, error)
                        continue
                    batch = batches.get(target.batch)
                    if batch is None:
                        batch = batches[target.batch] = (target.handler, [])
                    batch[1].append(built)
        calls = [
            self._report_call(handler, adapter_api.HANDLER_METHODS[template], instances)
            for (_, template), (handler, instances) in batches.items()
        ]
        await asyncio.gather(*calls)

    def _matching(self, snapshot: Snapshot, bag: Any, variety: Variety) -> list[CompiledRule]:
        matched = []
        for rule in snapshot.rules_for(_namespace(bag), variety):
            if rule.match is None:
                matched.append(rule)
                continue
            try:
                if rule.match.evaluate(bag):
                    matched.append(rule)
            except EvalError:
                # An attribute the match needs is absent: the rule does not apply (Istio).
                self.counters.match_errors += 1
        return matched

    def _build(self, instance: Any, bag: Any) -> Any:
        try:
            return instance.build(bag)
        except EvalError as error:
            self.counters.instance_errors += 1
            log.debug("instance %s not built: %s", instance.qualified, error)
            return None

    async def _check_call(
        self, handler: HandlerEntry, method: str, instance: Any
    ) -> adapter_api.CheckResult:
        try:
            return await self._safecall(handler, method, instance)
        except _AdapterFailure as failure:
            if handler.fail_open:
                return adapter_api.CheckResult()
            return adapter_api.CheckResult(
                status_code=adapter_api.UNAVAILABLE,
                message=f"{handler.qualified}: {failure}",
                valid_duration=datetime.timedelta(0),
                valid_use_count=0,
            )

    async def _quota_call(
        self, handler: HandlerEntry, instance: Any, args: adapter_api.QuotaArgs
    ) -> adapter_api.QuotaResult:
        try:
            return await self._safecall(handler, "handle_quota", instance, args)
        except _AdapterFailure as failure:
            if handler.fail_open:
                return adapter_api.QuotaResult(granted_amount=args.amount)
            return adapter_api.QuotaResult(
                0, status_code=adapter_api.UNAVAILABLE, message=f"{handler.qualified}: {failure}"
            )

    async def _report_call(self, handler: HandlerEntry, method: str, instances: list[Any]) -> None:
        # Counted and logged in _safecall; losing telemetry never fails a report.
        with contextlib.suppress(_AdapterFailure):
            await self._safecall(handler, method, instances)

    async def _safecall(self, handler: HandlerEntry, method: str, *args: Any) -> Any:
        self.counters.adapter_calls += 1
        try:
            async with asyncio.timeout(self.adapter_timeout):
                return await getattr(handler.handler, method)(*args)
        except TimeoutError:
            self.counters.adapter_timeouts += 1
            log.warning(
                "adapter %s (%s) timed out after %.3gs",
                handler.qualified,
                method,
                self.adapter_timeout,
            )
            raise _AdapterFailure(f"timed out after {self.adapter_timeout:.3g}s") from None
        except Exception as error:
            self.counters.adapter_errors += 1
            log.warning("adapter %s (%s) failed: %r", handler.qualified, method, error)
            raise _AdapterFailure(f"adapter error: {error}") from None


class _AdapterFailure(Exception):
    pass


def _namespace(bag: Any) -> str | None:
    for name in _NAMESPACE_ATTRIBUTES:
        value, found = bag.get(name)
        if found:
            return value  # type: ignore[no-any-return]
    return None


def _combine(results: list[adapter_api.CheckResult]) -> adapter_api.CheckResult:
    if not results:
        return adapter_api.CheckResult()
    refused = next((r for r in results if not r.ok), None)
    return adapter_api.CheckResult(
        status_code=refused.status_code if refused else adapter_api.OK,
        message=refused.message if refused else "",
        valid_duration=min(r.valid_duration for r in results),
        valid_use_count=min(r.valid_use_count for r in results),
    )


def _names(name: str, namespace: str, quota: str) -> bool:
    """Whether a client's quota name (`requestcount`, `requestcount.quota.istio-system`) is this instance."""
    wanted, wanted_namespace = refs.resolve(quota, namespace)
    return wanted == name and wanted_namespace == namespace
