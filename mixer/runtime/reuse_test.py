"""A Report's entries evaluated with reuse give exactly what evaluating each in full gives.

The telemetry config shipped with Mixer (four metrics, the access log, the TCP ones), real
prometheus and stdio adapters; the reference is the same dispatcher without the deltas,
which evaluates every expression of every entry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import prometheus_client
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixer.adapter import api as adapter_api
from mixer.attribute.bag import Bag
from mixer.attribute.compressed import decode_report, decode_report_deltas, encode_report
from mixer.runtime.dispatcher import Dispatcher
from mixer.runtime.reuse import InstancePlan, ReportEvaluator
from mixer.runtime.snapshot import CompiledInstance, Snapshot, build_snapshot
from mixer.server.server import MixerOptions, MixerServer, standard_types
from mixer.server.testing import TELEMETRY
from pkg.config import loader

_STDIO_PARAMS = "  compiledAdapter: stdio\n  params:\n    outputAsJson: true\n"
T0 = datetime.datetime(2026, 12, 4, 1, 0, 0, tzinfo=datetime.UTC)

BASE: dict[str, Any] = {
    "context.protocol": "http",
    "context.reporter.kind": "inbound",
    "source.labels": {"app": "reviews", "version": "v3"},
    "source.workload.name": "reviews-v3",
    "source.principal": "cluster.local/ns/default/sa/bookinfo-reviews",
    "destination.labels": {"app": "ratings", "version": "v1"},
    "destination.workload.name": "ratings-v1",
    "destination.service.host": "ratings.default.svc.cluster.local",
    "destination.namespace": "default",
    "connection.mtls": True,
    "request.headers": {"x-request-id": "r-0", ":authority": "ratings:9080"},
    "request.id": "r-0",
    "request.time": T0,
    "response.time": T0 + datetime.timedelta(milliseconds=2),
    "response.code": 200,
    "response.duration": datetime.timedelta(milliseconds=2),
    "response.size": 120,
}


def _telemetry(access_log: pathlib.Path) -> dict[str, list[Any]]:
    text = TELEMETRY.read_text()
    assert text.count(_STDIO_PARAMS) == 1
    text = text.replace(
        _STDIO_PARAMS, _STDIO_PARAMS + f'    logStream: FILE\n    outputPath: "{access_log}"\n'
    )
    configs: dict[str, list[Any]] = {}
    for resource in loader.load_text(text, source=str(TELEMETRY)):
        configs.setdefault(resource.schema.kind, []).append(resource)
    return configs


@dataclasses.dataclass
class _Mixer:
    snapshot: Snapshot
    registry: prometheus_client.CollectorRegistry
    access_log: pathlib.Path

    def samples(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)

    async def log_lines(self) -> list[str]:
        for entry in self.snapshot.handlers.values():
            flush = getattr(entry.handler, "flush", None)
            if flush is not None:
                await flush()
        return self.access_log.read_text().splitlines()

    async def close(self) -> None:
        for entry in self.snapshot.handlers.values():
            await entry.handler.close()


async def _mixer(folder: pathlib.Path, name: str) -> _Mixer:
    registry = prometheus_client.CollectorRegistry()
    env = adapter_api.Env(logger=logging.getLogger("mixer.adapter"), metrics=registry)
    access_log = folder / f"{name}.log"
    access_log.touch()
    snapshot = await build_snapshot(1, _telemetry(access_log), base_types=standard_types(), env=env)
    assert not snapshot.errors
    return _Mixer(snapshot, registry, access_log)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def mixers(
    loop: asyncio.AbstractEventLoop, tmp_path: pathlib.Path
) -> Iterator[tuple[_Mixer, _Mixer]]:
    full = loop.run_until_complete(_mixer(tmp_path, "full"))
    reusing = loop.run_until_complete(_mixer(tmp_path, "reusing"))
    try:
        yield full, reusing
    finally:
        loop.run_until_complete(full.close())
        loop.run_until_complete(reusing.close())


def _instance(snapshot: Snapshot, name: str) -> CompiledInstance:
    for rule in snapshot.rules:
        for action in rule.actions:
            for instance in action.instances:
                if instance.name == name:
                    return instance
    raise AssertionError(f"no instance {name}")


def _entries(*changes: Mapping[str, Any]) -> tuple[list[Bag], list[Any]]:
    """BASE, then BASE with each change applied on the one before, through the wire."""
    bags, current = [], dict(BASE)
    bags.append(dict(current))
    for change in changes:
        current = {**current, **change}
        bags.append(dict(current))
    return decode_report_deltas(encode_report(bags))


def _build_all(snapshot: Snapshot, name: str, bags: list[Bag], deltas: list[Any]) -> list[Any]:
    instance = _instance(snapshot, name)
    evaluator = ReportEvaluator()
    built = []
    for bag, delta in zip(bags, deltas, strict=True):
        evaluator.begin(delta)
        built.append(evaluator.build(instance, bag))
    return built


def test_plan_knows_what_each_expression_reads(mixers: tuple[_Mixer, _Mixer]) -> None:
    plan = InstancePlan.of(_instance(mixers[0].snapshot, "requestcount"))
    assert "response.duration" not in plan.read
    assert "request.headers" not in plan.read
    value = plan.scalar_names.index("value")
    assert all(value not in slots for slots in plan.readers.values())  # "1" reads nothing
    (_, keys, start) = next(m for m in plan.maps if m[0] == "dimensions")
    assert plan.readers["source.labels"] == tuple(
        sorted((start + keys.index("source_app"), start + keys.index("source_version")))
    )


def test_a_changed_label_attribute_gives_new_labels(mixers: tuple[_Mixer, _Mixer]) -> None:
    snapshot = mixers[0].snapshot
    bags, deltas = _entries({"source.labels": {"app": "productpage", "version": "v1"}})
    first, second = _build_all(snapshot, "requestcount", bags, deltas)
    assert first.dimensions["source_app"] == "reviews"
    assert second.dimensions["source_app"] == "productpage"
    assert second.dimensions["source_version"] == "v1"
    assert second == _instance(snapshot, "requestcount").build(bags[1])


def test_unreferenced_changes_keep_the_labels(mixers: tuple[_Mixer, _Mixer]) -> None:
    snapshot = mixers[0].snapshot
    change = {
        "request.id": "r-1",
        "request.headers": {"x-request-id": "r-1", ":authority": "ratings:9080"},
        "response.duration": datetime.timedelta(milliseconds=9),
    }
    bags, deltas = _entries(change)
    assert set(deltas[1]) == set(change)
    counts = _build_all(snapshot, "requestcount", bags, deltas)
    assert counts[1] is counts[0]  # nothing it reads changed: the very same instance
    durations = _build_all(snapshot, "requestduration", bags, deltas)
    assert durations[1].value == datetime.timedelta(milliseconds=9)
    assert durations[1].dimensions is durations[0].dimensions
    logs = _build_all(snapshot, "accesslog", bags, deltas)
    assert logs[1].variables["requestId"] == "r-1"
    assert logs[1].variables["latency"] == datetime.timedelta(milliseconds=9)
    for want, got in zip(bags, logs, strict=True):
        assert got == _instance(snapshot, "accesslog").build(want)


def test_an_entry_that_skipped_an_instance_does_not_reuse_it(
    mixers: tuple[_Mixer, _Mixer], loop: asyncio.AbstractEventLoop
) -> None:
    """Entry 1 is TCP (the HTTP rules do not match) and changes a label's attribute; entry 2
    is HTTP again: its labels must have entry 1's change, which its own delta does not carry."""
    full, reusing = mixers
    request = encode_report(
        [
            BASE,
            {**BASE, "context.protocol": "tcp", "source.workload.name": "details-v1"},
            {**BASE, "source.workload.name": "details-v1"},
        ]
    )
    bags, deltas = decode_report_deltas(request)
    assert deltas[2] is not None
    assert "source.workload.name" not in deltas[2]
    loop.run_until_complete(Dispatcher().report(full.snapshot, bags))
    loop.run_until_complete(Dispatcher().report(reusing.snapshot, bags, deltas))
    assert full.samples() == reusing.samples()
    assert b'source_workload="details-v1"' in reusing.samples()


def test_failed_evaluations_count_as_without_reuse(
    mixers: tuple[_Mixer, _Mixer], loop: asyncio.AbstractEventLoop
) -> None:
    """The access log's timestamp is `request.time`, with no default: without it the
    instance is not built, once per entry, reused or not."""
    full, reusing = mixers
    without_time = {k: v for k, v in BASE.items() if k != "request.time"}
    bags = [without_time, {**without_time, "response.code": 503}, {**BASE, "response.code": 503}]
    request = encode_report(bags)
    by_full, by_reusing = Dispatcher(), Dispatcher()
    loop.run_until_complete(by_full.report(full.snapshot, decode_report(request)))
    loop.run_until_complete(by_reusing.report(reusing.snapshot, *decode_report_deltas(request)))
    assert by_full.counters.instance_errors == 2
    assert by_reusing.counters == by_full.counters
    assert loop.run_until_complete(full.log_lines()) == loop.run_until_complete(reusing.log_lines())
    assert len(loop.run_until_complete(reusing.log_lines())) == 1


# Values each attribute takes in the random batches: enough alike that consecutive entries
# often repeat them, with the absent case for most (an attribute may appear mid-batch).
_POOL: dict[str, list[Any]] = {
    "context.protocol": ["http", "grpc", "tcp"],
    "context.reporter.kind": ["inbound", "outbound"],
    "source.labels": [{"app": "reviews", "version": "v3"}, {"app": "productpage"}, {}],
    "destination.labels": [{"app": "ratings", "version": "v1"}, {"version": "v2"}],
    "source.workload.name": ["reviews-v3", "productpage-v1"],
    "destination.workload.name": ["ratings-v1", "details-v1"],
    "destination.service.host": ["ratings.default.svc.cluster.local", "details.default"],
    "destination.namespace": ["default", "istio-system", "bookinfo"],
    "connection.mtls": [True, False],
    "api.protocol": ["http", "grpc"],
    "request.headers": [
        {"x-request-id": "r-1", ":authority": "ratings:9080"},
        {"x-request-id": "r-2", "x-forwarded-for": "10.0.0.1"},
        {},
    ],
    "request.id": ["r-1", "r-2"],
    "request.time": [T0, T0 + datetime.timedelta(seconds=1)],
    "response.time": [T0 + datetime.timedelta(milliseconds=3)],
    "response.code": [200, 404, 503],
    "response.duration": [datetime.timedelta(microseconds=m) for m in (0, 1500, 2_000_000)],
    "response.size": [0, 120, 5000],
    "request.size": [0, 77],
    "source.ip": [bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])],
    "connection.sent.bytes": [0, 900],
    "connection.received.bytes": [10],
    "connection.event": ["open", "close"],
}
_NAMES = sorted(_POOL)


def _values(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={n: st.sampled_from(_POOL[n]) for n in names})


# A batch: a first entry, then per later entry the attributes it changes or adds and,
# rarely, those it drops (which makes the batch INDEPENDENT_ENCODING).
_BATCHES = st.tuples(
    _values(_NAMES),
    st.lists(
        st.tuples(_values(_NAMES), st.lists(st.sampled_from(_NAMES), max_size=1)),
        max_size=7,
    ),
)


def test_random_batches_give_the_samples_and_lines_of_full_evaluation(
    mixers: tuple[_Mixer, _Mixer], loop: asyncio.AbstractEventLoop
) -> None:
    full, reusing = mixers
    full_dispatcher = Dispatcher()
    # The whole server path: decoding, the type check of each delta, reuse.
    server = MixerServer(MixerOptions(config_store="http://127.0.0.1:9"))
    server.snapshot = reusing.snapshot

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(_BATCHES)
    def check(batch: tuple[dict[str, Any], list[tuple[dict[str, Any], list[str]]]]) -> None:
        first, steps = batch
        bags, current = [first], first
        for change, dropped in steps:
            current = {k: v for k, v in {**current, **change}.items() if k not in dropped}
            bags.append(current)
        request = encode_report(bags)
        loop.run_until_complete(full_dispatcher.report(full.snapshot, decode_report(request)))
        loop.run_until_complete(server.report(request))
        assert reusing.samples() == full.samples()
        assert loop.run_until_complete(reusing.log_lines()) == loop.run_until_complete(
            full.log_lines()
        )
        assert server.dispatcher.counters == full_dispatcher.counters

    check()
    assert full_dispatcher.counters.reports >= 30
    assert full.samples().count(b"istio_requests_total{") > 1  # the batches reached the metrics
    assert loop.run_until_complete(full.log_lines())
