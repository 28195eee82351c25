"""Mixer's request path without gRPC: the benchmark's config set and requests, in this process.

The config set is compiled with `build_snapshot` (the adapters are real: the access log
goes to a file, the metrics to a registry of their own) and handed to a `MixerServer` that
is never started, whose `check` and `report` are then called directly: what Mixer's own
Python costs per request, to set against the CPU a served request costs (gRPC and asyncio
included) and against `null_mixer.py`'s (gRPC and asyncio alone).

Every measure runs once untimed, then `repeats` times interleaved with the others, and
keeps its fastest run: on a shared machine a slow spell then hits every measure alike
instead of one of them. The access log's writer thread is drained before each run so its
writes do not compete with the run for the interpreter.

(Two "what if" figures once sized changes Mixer did not have: Report through only the
rules with a REPORT instance, and an exact-type attribute check. Mixer has both now.)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import pathlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import prometheus_client

from mixer.adapter import api as adapter_api
from mixer.attribute.bag import TrackingBag
from mixer.attribute.compressed import decode_check, decode_report
from mixer.runtime.snapshot import build_snapshot
from mixer.server.attribute_types import type_errors
from mixer.server.server import MixerOptions, MixerServer, standard_types
from tools.bench import mixer_workload

Call = Callable[[], Awaitable[object]]


async def run_us(call: Call, calls: int) -> float:
    """Microseconds a call over `calls` calls."""
    gc.collect()  # a collection owed by an earlier run must not land in this one
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls * 1e6


async def best_us(
    measures: Mapping[str, tuple[Call, int]],
    repeats: int,
    between: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, float]:
    """Per measure (call, calls a run): the fastest of `repeats` interleaved runs, in µs."""
    for call, calls in measures.values():
        await run_us(call, max(calls // 10, 1))  # warm up, untimed
    best = dict.fromkeys(measures, float("inf"))
    for _ in range(repeats):
        for name, (call, calls) in measures.items():
            if between is not None:
                await between()
            best[name] = min(best[name], await run_us(call, calls))
    return {name: round(us, 1) for name, us in best.items()}


async def measure(
    rules: int,
    folder: pathlib.Path,
    *,
    report_sets: int,
    calls: int = 1000,
    repeats: int = 5,
) -> dict[str, Any]:
    """Microseconds per Check (whole and by step) and per Report, for config set `rules`."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    configs: dict[str, list[Any]] = {}
    for resource in mixer_workload.config_set(rules, folder / "access.log"):
        configs.setdefault(resource.schema.kind, []).append(resource)
    env = adapter_api.Env(
        logger=logging.getLogger("mixer.adapter"), metrics=prometheus_client.CollectorRegistry()
    )
    snapshot = await build_snapshot(1, configs, base_types=standard_types(), env=env)
    if snapshot.errors:
        raise RuntimeError(f"config set {rules}: {snapshot.errors[:3]}")
    # Never started: no config store is contacted, only check() and report() are called.
    server = MixerServer(MixerOptions(config_store="http://127.0.0.1:9"))
    server.snapshot = snapshot
    app = mixer_workload.destination_app(rules)
    check = mixer_workload.check_request(app)
    report = mixer_workload.report_request(app, report_sets)
    bag = decode_check(check)
    bags = decode_report(report)
    types = snapshot.types
    flushable = [e.handler for e in snapshot.handlers.values() if hasattr(e.handler, "flush")]

    async def drain_access_log() -> None:
        for handler in flushable:
            await handler.flush()

    async def whole_check() -> None:
        await server.check(check)

    async def decode() -> None:
        decode_check(check)

    async def type_check() -> None:
        type_errors(bag.items(), types)

    async def dispatch() -> None:
        await server.dispatcher.check(snapshot, TrackingBag(bag))

    async def dispatch_and_references() -> None:
        tracking = TrackingBag(bag)
        await server.dispatcher.check(snapshot, tracking)
        tracking.referenced_attributes()

    async def whole_report() -> None:
        await server.report(report)

    async def report_type_check() -> None:
        for one in bags:
            type_errors(one.items(), types)

    report_calls = max(calls // 10, 1)
    try:
        answer = await server.check(check)
        figures: dict[str, Any] = {"check_answer": answer.precondition.status.code}
        timed = await best_us(
            {
                "check_us": (whole_check, calls),
                "decode_us": (decode, calls),
                "type_check_us": (type_check, calls),
                "dispatch_us": (dispatch, calls),
                "dispatch_and_referenced_attributes_us": (dispatch_and_references, calls),
                "report_us": (whole_report, report_calls),
                "report_type_check_us": (report_type_check, report_calls),
            },
            repeats,
            between=drain_access_log,
        )
        figures.update(timed)
        figures["report_us_per_attribute_set"] = round(timed["report_us"] / report_sets, 1)
        return figures
    finally:
        for entry in snapshot.handlers.values():
            await entry.handler.close()
