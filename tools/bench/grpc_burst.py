"""Benchmark: bursts of concurrent Checks against a real mixs, answers counted by status.

Issue 10 saw 150-190 of 2000 concurrent Checks answered CANCELLED. This starts a real
config store and a real `mixs` as processes on 127.0.0.1 (mixer_throughput's launcher,
config set 0: telemetry.yaml's rules, no policy rule, every Check allowed), then from this
process fires `--calls` Checks at once (grpc.aio, every request encoded once up front,
`--channels` connections, a 30 s deadline), `--rounds` times, and counts the answers by
gRPC status; per round also the latency of the answered calls (p50, p99, max) and the
burst's wall time, and mixs' memory after the rounds (RSS and peak RSS).

`--baseline-tree DIR` first runs the same rounds against mixs from another source tree, so
before and after come from one run on one machine. A tree of main, without touching any
checkout, with the generated protos copied over:

    mkdir /tmp/mesh-main && git archive main | tar -x -C /tmp/mesh-main
    find api -name '*_pb2*.py' | tar -cf - -T - | tar -xf - -C /tmp/mesh-main
    PYTHONPATH=. .venv/bin/python tools/bench/grpc_burst.py --baseline-tree /tmp/mesh-main

What mixs answers is the only thing measured here; the config store and the client run on
the same two cores, so the latencies are those of a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import pathlib
import sys
import time
from typing import Any

import grpc

from api.mixer.v1 import check_pb2
from tools.bench import benchmesh, mixer_throughput, mixer_workload, procmem, stats
from tools.bench import report as results
from tools.bench.mixer_workload import ROOT
from tools.bench.runfolder import run_folder

NAME = "grpc_burst"
RULES = 0  # telemetry.yaml's rules only: every Check is allowed


async def burst(address: str, request: bytes, calls: int, channels: int) -> dict[str, Any]:
    """`calls` Checks at once over `channels` connections: status counts and latencies."""
    opened = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(channels)
    ]
    codes: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*(c.channel_ready() for c in opened))
        checks = [
            c.unary_unary(
                mixer_throughput.CHECK_METHOD,
                response_deserializer=check_pb2.CheckResponse.FromString,
            )
            for c in opened
        ]

        async def one(i: int) -> None:
            started = time.perf_counter()
            try:
                response = await checks[i % channels](request, timeout=30)
            except grpc.aio.AioRpcError as error:
                codes[error.code().name] += 1
                return
            latencies.append(time.perf_counter() - started)
            codes[f"OK (check {response.precondition.status.code})"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        wall = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.close() for c in opened))
    figures: dict[str, Any] = {"answers": dict(sorted(codes.items())), "wall_s": round(wall, 2)}
    if latencies:
        summary = stats.Summary.of_seconds(latencies)
        figures.update(p50_ms=summary.p50, p99_ms=summary.p99, max_ms=summary.max)
    return figures


async def rounds_against(
    tree: pathlib.Path, label: str, run_dir: pathlib.Path, args: argparse.Namespace
) -> dict[str, Any]:
    request = mixer_workload.check_request(mixer_workload.destination_app(RULES))
    data = request.SerializeToString()
    async with mixer_throughput.running_mixer(
        RULES, run_dir, mixer_tree=tree, label=f"-{label}"
    ) as mixer:
        # A few calls first: the first Check compiles and warms what the burst then measures.
        await burst(mixer.grpc_address, data, 20, 1)
        rounds = []
        for _ in range(args.rounds):
            rounds.append(await burst(mixer.grpc_address, data, args.calls, args.channels))
            await asyncio.sleep(0.5)  # the server's queue empties between bursts
        memory = procmem.read_memory(mixer.mixer.pid).to_json()
    total: collections.Counter[str] = collections.Counter()
    for one in rounds:
        total.update(one["answers"])
    return {
        "tree": str(tree),
        "answers_total": dict(sorted(total.items())),
        "failed_total": sum(n for code, n in total.items() if not code.startswith("OK")),
        "rounds": rounds,
        "mixs_memory": memory,
    }


async def run(args: argparse.Namespace, run_dir: pathlib.Path) -> dict[str, Any]:
    trees = {"after": ROOT}
    if args.baseline_tree is not None:
        trees = {"before": args.baseline_tree.absolute(), **trees}
    figures: dict[str, Any] = {
        "calls": args.calls,
        "channels": args.channels,
        "rounds_per_tree": args.rounds,
        "trees": {},
    }
    for label, tree in trees.items():
        figures["trees"][label] = await rounds_against(tree, label, run_dir, args)
        print_tree(label, figures["trees"][label])
    return figures


def print_tree(label: str, entry: dict[str, Any]) -> None:
    print(f"\n{label}: mixs from {entry['tree']}")
    rows = [
        [
            i + 1,
            ", ".join(f"{code} {n}" for code, n in r["answers"].items()),
            r["wall_s"],
            r.get("p50_ms", "-"),
            r.get("p99_ms", "-"),
            r.get("max_ms", "-"),
        ]
        for i, r in enumerate(entry["rounds"])
    ]
    print(results.table(["round", "answers", "wall s", "p50 ms", "p99 ms", "max ms"], rows))
    memory = entry["mixs_memory"]
    print(
        f"total: {entry['answers_total']}; failed {entry['failed_total']}; "
        f"mixs RSS {memory['rss_mib']} MiB, peak {memory['peak_rss_mib']} MiB"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="Checks in each burst")
    parser.add_argument("--channels", type=int, default=1, help="connections the burst uses")
    parser.add_argument("--rounds", type=int, default=5, help="bursts per mixs")
    parser.add_argument(
        "--baseline-tree", type=pathlib.Path, help="also run mixs from this source tree, first"
    )
    parser.add_argument("--output", type=pathlib.Path, help="results folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with run_folder("grpc-burst") as run_dir:
        try:
            result = asyncio.run(run(args, run_dir))
        finally:
            mixer_throughput.stop_all()
    print(f"written to {results.write_result(NAME, result, directory=args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(benchmesh.interruptible(main))
