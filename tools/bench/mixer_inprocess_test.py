import asyncio
import logging
import pathlib

import prometheus_client

from mixer.adapter import api as adapter_api
from mixer.attribute.bag import Bag
from mixer.runtime.snapshot import build_snapshot
from mixer.server.server import standard_types
from mixer.template.templates import Variety
from tools.bench import mixer_inprocess, mixer_workload


def test_times_the_request_path_of_a_config_set(tmp_path: pathlib.Path) -> None:
    figures = asyncio.run(mixer_inprocess.measure(2, tmp_path, report_sets=4, calls=5, repeats=2))
    assert figures["check_answer"] == mixer_workload.PERMISSION_DENIED
    timed = [name for name in figures if name.endswith("_us")]
    assert len(timed) == 10
    for name in timed:
        assert figures[name] > 0, name
    assert figures["report_us_per_attribute_set"] == round(figures["report_us"] / 4, 1)
    # The Reports went through the real access log adapter.
    assert '"destinationApp":"svc-1"' in (tmp_path / "access.log").read_text()


def test_best_us_interleaves_runs_and_keeps_the_fastest() -> None:
    order: list[str] = []
    delays = {"slow_first": iter([0.0, 0.02, 0.0, 0.0]), "steady": iter([0.0, 0.0, 0.0, 0.0])}

    def call(name: str):
        async def run() -> None:
            order.append(name)
            await asyncio.sleep(next(delays[name]))

        return run

    drained = 0

    async def between() -> None:
        nonlocal drained
        drained += 1

    best = asyncio.run(
        mixer_inprocess.best_us(
            {"slow_first": (call("slow_first"), 1), "steady": (call("steady"), 1)},
            repeats=3,
            between=between,
        )
    )
    # One untimed warm-up each, then the measures take turns.
    assert order == ["slow_first", "steady"] + ["slow_first", "steady"] * 3
    assert drained == 6
    assert set(best) == {"slow_first", "steady"}
    assert best["slow_first"] < 10_000  # a run that slept 0 s, not the 20 ms one


def test_only_rules_with_a_variety(tmp_path: pathlib.Path) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        configs: dict[str, list] = {}
        for resource in mixer_workload.config_set(3, tmp_path / "access.log"):
            configs.setdefault(resource.schema.kind, []).append(resource)
        env = adapter_api.Env(logging.getLogger("t"), prometheus_client.CollectorRegistry())
        snapshot = await build_snapshot(1, configs, base_types=standard_types(), env=env)
        try:
            report = mixer_inprocess.only_rules_with(snapshot, Variety.REPORT)
            check = mixer_inprocess.only_rules_with(snapshot, Variety.CHECK)
            return [r.name for r in report.rules], [r.name for r in check.rules]
        finally:
            for entry in snapshot.handlers.values():
                await entry.handler.close()

    report, check = asyncio.run(scenario())
    assert sorted(report) == ["promhttp", "promtcp", "stdio", "stdiotcp"]
    assert sorted(check) == ["deny-0", "deny-2", "versions-1"]


def test_exact_type_check_agrees_with_the_full_check() -> None:
    types = standard_types()
    exact = {n: mixer_inprocess._DECODED_TYPES[t] for n, t in types.items()}
    good = Bag(mixer_workload.check_attributes("svc-1"))
    assert mixer_inprocess.exact_type_check(good, exact, types) == []
    bad = Bag({**mixer_workload.check_attributes("svc-1"), "destination.port": "9080"})
    problems = mixer_inprocess.exact_type_check(bad, exact, types)
    assert problems == ["attribute destination.port is declared INT64, got a string"]
