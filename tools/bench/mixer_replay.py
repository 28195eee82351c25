"""Benchmark: mixs' Report path, stage by stage, on the Reports real sidecars send.

mixer_throughput.py measures Mixer on Reports the benchmark writes itself (10 attribute sets
each); the sidecars' filters send something else: batches of hundreds of entries, each a
delta of a few attributes (times, ids, the headers maps) against the entry before. So:

1. capture: the benchmark mesh (`tools/local`, as `make bookinfo` runs it, Istio's default
   profile) with the Mixer filter in every proxy and MeshConfig `mixerReportServer` pointed
   at a recorder in this process, which keeps each ReportRequest's bytes and answers at once
   (Checks still go to mixs). hey sends `--rate` req/s through productpage's sidecar to
   details (the dataplane benchmark's path) while `--pages` product pages a second go
   through the gateway, for `--seconds`.
2. replay, in a process of its own per tree: Mixer's telemetry config
   (`mixer/config/telemetry.yaml`, the access log to a file) compiled as mixs compiles it,
   full collections held off as mixs' IdleCollector holds them, and the captured Reports
   through `MixerServer.report`, whole and by stage: decoding, the type check, evaluating
   the rules and instances, and each adapter's handler on the instances that produced. CPU
   time of the process (the access log's writer thread included), best of `--repeats`,
   per reported entry.

With `--baseline-tree DIR` the replay runs again with DIR's Mixer (PYTHONPATH=DIR: a
checkout set up by `make setup`, whose generated protos are in place) on the same Reports, the two trees taking turns `--rounds`
times. `--reports FILE` replays a capture saved before (`--save FILE`) instead of capturing.

    PYTHONPATH=. .venv/bin/python tools/bench/mixer_replay.py [--baseline-tree /tmp/old]
    bazel run //tools/bench:mixer_replay
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import json
import logging
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

NAME = "mixer_replay"
REPORT_METHOD = "/istio.mixer.v1.Mixer/Report"
RECORDER_PORT = 9091  # Mixer's port, on an address of its own
STAGES = ("decode", "type_check", "evaluate", "adapters", "whole")


# The capture.


class Recorder:
    """A Mixer Report endpoint keeping each request's bytes, answering an empty response."""

    def __init__(self, address: str) -> None:
        import grpc  # only the capture needs it; the replay runs in older trees too

        self.reports: list[bytes] = []
        self._lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler(
            "istio.mixer.v1.Mixer",
            {"Report": grpc.unary_unary_rpc_method_handler(self._report)},
        )
        self._server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers((handler,))
        if self._server.add_insecure_port(address) == 0:
            raise RuntimeError(f"the recorder could not listen on {address}")

    def _report(self, request: bytes, _: Any) -> bytes:
        with self._lock:
            self.reports.append(request)
        return b""  # an empty ReportResponse

    def __enter__(self) -> Recorder:
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop(grace=1.0).wait(5.0)


def capture(args: argparse.Namespace) -> list[bytes]:
    from tools.bench import benchmesh, dataplane

    recorder_address = f"{args.subnet}.101:{RECORDER_PORT}"
    with (
        Recorder(recorder_address) as recorder,
        benchmesh.running_mesh(
            NAME,
            args.subnet,
            mixer=True,
            mixer_report_address=recorder_address,
            **dataplane.DEFAULT_PROFILE,
        ) as bench,
    ):
        dataplane.wait_filters(bench, ["productpage-v1", "details-v1"], present=True)
        sidecars = dataplane.Path(
            "sidecars",
            "http://details:9080/details/0",
            proxy=bench.outbound_proxy("productpage-v1"),
        )
        pages = dataplane.Path("bookinfo", bench.topology.productpage_url)
        print(
            f"capturing: {args.rate:g} req/s to details and {args.pages:g} product pages/s "
            f"for {args.seconds:g} s ...",
            flush=True,
        )
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = [
                pool.submit(dataplane.hey, sidecars, args.rate, args.seconds),
                pool.submit(dataplane.hey, pages, args.pages, args.seconds),
            ]
            for run in runs:
                _, statuses, _ = run.result()
                if set(statuses) != {200}:
                    raise RuntimeError(f"requests answered {statuses} while capturing")
        # Batches go out when full or a second old; the last ones on the filters' next tick.
        time.sleep(2.5)
        reports = list(recorder.reports)
    if not reports:
        raise RuntimeError("the sidecars sent no Report to the recorder")
    return reports


def save(reports: list[bytes], path: pathlib.Path) -> None:
    with path.open("wb") as out:
        for report in reports:
            out.write(struct.pack("<I", len(report)))
            out.write(report)


def load(path: pathlib.Path) -> list[bytes]:
    data, reports, at = path.read_bytes(), [], 0
    while at < len(data):
        (size,) = struct.unpack_from("<I", data, at)
        reports.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return reports


# The replay (runs in a child process, with whichever tree's `mixer` is on its path).


async def replay(reports_path: pathlib.Path, repeats: int) -> dict[str, Any]:
    import prometheus_client

    from api.mixer.v1 import report_pb2
    from mixer.adapter import api as adapter_api
    from mixer.attribute.compressed import decode_report_deltas
    from mixer.runtime.dispatcher import Dispatcher
    from mixer.runtime.snapshot import build_snapshot
    from mixer.server.attribute_types import type_errors
    from mixer.server.server import MixerOptions, MixerServer, standard_types
    from tools.bench import mixer_workload

    # Built here as mixer_inprocess builds it, not through it: the replay runs against older
    # trees too, so it uses only what theirs have (mixer_workload, the mixer packages).
    folder = pathlib.Path(tempfile.mkdtemp(prefix="mixer-replay-"))
    configs: dict[str, list[Any]] = {}
    for resource in mixer_workload.config_set(0, folder / "access.log"):
        configs.setdefault(resource.schema.kind, []).append(resource)
    env = adapter_api.Env(
        logger=logging.getLogger("mixer.adapter"), metrics=prometheus_client.CollectorRegistry()
    )
    snapshot = await build_snapshot(1, configs, base_types=standard_types(), env=env)
    if snapshot.errors:
        raise RuntimeError(f"telemetry config: {snapshot.errors[:3]}")
    server = MixerServer(MixerOptions(config_store="http://127.0.0.1:9"))  # never started
    server.snapshot = snapshot
    requests = [report_pb2.ReportRequest.FromString(r) for r in load(reports_path)]
    entries = sum(len(r.attributes) for r in requests)
    decoded = [decode_report_deltas(r) for r in requests]
    types = snapshot.types
    writers = [e.handler for e in snapshot.handlers.values() if hasattr(e.handler, "flush")]

    calls: list[tuple[Any, str, list[Any]]] = []

    class Capturing(Dispatcher):
        async def _report_call(self, handler: Any, method: str, instances: list[Any]) -> None:
            calls.append((handler, method, instances))

    class Evaluating(Dispatcher):
        async def _report_call(self, handler: Any, method: str, instances: list[Any]) -> None:
            return None

    capturing, evaluating = Capturing(), Evaluating()
    for bags, deltas in decoded:
        await capturing.report(snapshot, bags, deltas)
    adapters = sorted({(h.qualified, m) for h, m, _ in calls})

    async def decode() -> None:
        for request in requests:
            decode_report_deltas(request)

    async def type_check() -> None:
        for bags, deltas in decoded:
            for bag, delta in zip(bags, deltas, strict=True):
                type_errors(bag.items() if delta is None else delta.items(), types)

    async def evaluate() -> None:
        for bags, deltas in decoded:
            await evaluating.report(snapshot, bags, deltas)

    async def written() -> None:
        # After each Report, as mixs' writer keeps up between them: a backlog of a whole
        # capture would pass the writer's bound and drop lines, and their writing with them.
        for writer in writers:
            await writer.flush()

    def adapter(key: tuple[str, str]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for handler, method, instances in calls:
                if (handler.qualified, method) == key:
                    await getattr(handler.handler, method)(instances)
                    await written()

        return run

    async def whole() -> None:
        for request in requests:
            await server.report(request)
            await written()

    measures: dict[str, Callable[[], Awaitable[None]]] = {
        "decode": decode,
        "type_check": type_check,
        "evaluate": evaluate,
        **{f"adapter {h} {m}": adapter((h, m)) for h, m in adapters},
        "whole": whole,
    }
    for run in measures.values():  # once untimed: caches and lazily built plans
        await run()
    best = dict.fromkeys(measures, float("inf"))
    # As mixs runs: young collections automatic, full ones (IdleCollector's) never mid-Report.
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(thresholds[0], thresholds[1], 1 << 30)
    try:
        for _ in range(repeats):
            for name, run in measures.items():
                await written()
                started = time.process_time()
                await run()  # the writer thread's CPU counts too
                best[name] = min(best[name], time.process_time() - started)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return {
        "reports": len(requests),
        "entries": entries,
        "entries_per_report": round(entries / len(requests), 1),
        "us_per_entry": {name: round(s / entries * 1e6, 2) for name, s in best.items()},
    }


def replay_in(tree: pathlib.Path, reports: pathlib.Path, repeats: int) -> dict[str, Any]:
    """The replay in a child process whose `mixer` (and protos) come from `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, __file__, "--replay-only", str(reports), "--repeats", str(repeats)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"replay in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# Reporting.


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tools.bench import report

    root = pathlib.Path(__file__).resolve().parent.parent.parent
    work = pathlib.Path(tempfile.mkdtemp(prefix="mixer-replay-"))
    if args.reports is not None:
        reports_path = args.reports
    else:
        reports = capture(args)
        reports_path = args.save or work / "reports.bin"
        save(reports, reports_path)
        print(f"captured {len(reports)} Reports ({reports_path})", flush=True)
    trees = {"this tree": root}
    if args.baseline_tree is not None:
        trees = {"baseline": args.baseline_tree.resolve(), **trees}
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for round_ in range(args.rounds):
        for label, tree in trees.items():
            print(f"round {round_ + 1}: replaying with {label} ({tree}) ...", flush=True)
            results[label].append(replay_in(tree, reports_path, args.repeats))
    table = []
    for label, runs in results.items():
        for stage in runs[0]["us_per_entry"]:
            figures = [r["us_per_entry"][stage] for r in runs]
            table.append([label, stage, *figures, min(figures)])
    headers = ["tree", "stage", *[f"round {i + 1}" for i in range(args.rounds)], "best"]
    first = next(iter(results.values()))[0]
    print(
        f"{first['reports']} Reports, {first['entries']} entries "
        f"({first['entries_per_report']} a Report); CPU us per entry:"
    )
    print(report.table(headers, table))
    return {
        "config": {
            "rate": args.rate,
            "pages_per_s": args.pages,
            "seconds": args.seconds,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "trees": {label: str(tree) for label, tree in trees.items()},
        },
        "results": results,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="req/s through the sidecars")
    parser.add_argument("--pages", type=float, default=20.0, help="product pages a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to capture")
    parser.add_argument("--subnet", default="127.0.14", help="loopback /24 for the mesh")
    parser.add_argument("--repeats", type=int, default=5, help="replays per round (best kept)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-tree", type=pathlib.Path, help="another checkout's Mixer")
    parser.add_argument("--reports", type=pathlib.Path, help="replay this capture (--save)")
    parser.add_argument("--save", type=pathlib.Path, help="keep the capture here")
    parser.add_argument("--replay-only", type=pathlib.Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.replay_only is not None:  # the child: one replay, its figures as a JSON line
        print(json.dumps(asyncio.run(replay(args.replay_only, args.repeats))))
        return 0
    from tools.bench import benchmesh, report

    def measured() -> int:
        result = run(args)
        print(f"written to {report.write_result(NAME, result)}")
        return 0

    return benchmesh.interruptible(measured)


if __name__ == "__main__":
    sys.exit(main())
