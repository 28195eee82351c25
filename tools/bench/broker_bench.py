"""Benchmark: how fast the broker answers a platform, each part a real process.

A config store, a CA and the broker each run as their own process (`python -m ...`) on
127.0.0.1 ephemeral ports; the platform is this process, over HTTP with basic auth. Measured:

1. `catalog`: GET /v2/catalog, one after another (the catalog comes from the informer cache).
2. `lifecycle`: N times, one after another: provision, bind (a key, a CSR, a certificate from
   the CA), fetch the binding, unbind, deprovision; each step's latency. Every step writes
   records and AuthorizationPolicies to the store and waits for them.
3. `concurrent`: W platform workers doing whole lifecycles on their own instances for S
   seconds: lifecycles a second, errors, and the broker's, store's and CA's CPU.

    PYTHONPATH=. .venv/bin/python tools/bench/broker_ops.py [--cycles 50] [--workers 4]
    (this module is the benchmark; broker_ops.py only runs it)
    bazel run //tools/bench:broker_ops
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

from broker import testing
from pilot.configstore.testing import StoreProcess
from tools.bench import report, security_ca
from tools.bench.stats import Summary

NAME = "broker_ops"
STEPS = ("provision", "bind", "fetch_binding", "unbind", "deprovision")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=50, help="sequential lifecycles")
    parser.add_argument("--catalogs", type=int, default=200, help="sequential catalog reads")
    parser.add_argument("--workers", type=int, default=4, help="concurrent platform workers")
    parser.add_argument("--seconds", type=float, default=10.0, help="concurrent run length")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def processes(work: pathlib.Path) -> AsyncIterator[dict[str, Any]]:
    """Store, CA and broker processes; yields the broker's URL and everyone's pid."""
    store = await asyncio.to_thread(StoreProcess(work / "store.db").start)
    try:
        async with security_ca.ca_process(work / "ca") as ca:
            files = testing.write_files(work / "broker", work / "ca" / "ca" / "root-cert.pem")
            files["ca_token_file"].write_text(security_ca.TOKEN + "\n")
            args = [
                "--address", "127.0.0.1", "--port", "0",
                "--config-store", store.url, "--ca-address", ca.address,
                "--ca-root", str(files["ca_root"]),
                "--ca-token-file", str(files["ca_token_file"]),
                "--credentials", str(files["credentials"]),
            ]  # fmt: skip
            broker = testing.BrokerProcess(args)
            await asyncio.to_thread(broker.start)
            try:
                await testing.apply(store.url, testing.PRODUCTPAGE, testing.DEMO_CATALOG)
                yield {
                    "url": broker.url,
                    "pids": {
                        "broker": broker.pid,
                        "config-store": store.process.pid,
                        "istio-ca": ca.pid,
                    },
                }
            finally:
                await asyncio.to_thread(broker.terminate)
    finally:
        await asyncio.to_thread(store.terminate)


async def lifecycle(osb: testing.OsbClient, instance: str, times: dict[str, list[float]]) -> int:
    """One whole lifecycle; its step latencies appended to `times`; the errors it met."""
    errors = 0
    steps = (
        ("provision", osb.provision(instance), 201),
        ("bind", osb.bind(instance, "b"), 201),
        ("fetch_binding", osb.get(f"/v2/service_instances/{instance}/service_bindings/b"), 200),
        ("unbind", osb.unbind(instance, "b"), 200),
        ("deprovision", osb.deprovision(instance), 200),
    )
    for step, call, expected in steps:
        started = time.perf_counter()
        answer = await call
        times[step].append(time.perf_counter() - started)
        errors += answer.status != expected
    return errors


async def measure(args: argparse.Namespace, work: pathlib.Path) -> dict[str, Any]:
    async with processes(work) as running, testing.OsbClient(running["url"]) as osb:
        await testing.wait_catalog(osb, lambda c: len(c["services"]) == 1)
        reads = []
        for _ in range(args.catalogs):
            started = time.perf_counter()
            await osb.get("/v2/catalog")
            reads.append(time.perf_counter() - started)
        times: dict[str, list[float]] = {step: [] for step in STEPS}
        errors = 0
        for n in range(args.cycles):
            errors += await lifecycle(osb, f"sequential-{n}", times)
        sequential = {step: Summary.of_seconds(times[step]).to_json() for step in STEPS}

        pids = running["pids"]
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        counts = [0] * args.workers
        concurrent_errors = 0
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()

        async def worker(index: int) -> None:
            nonlocal concurrent_errors
            mine: dict[str, list[float]] = {step: [] for step in STEPS}
            async with testing.OsbClient(running["url"]) as client:
                while time.monotonic() < deadline:
                    name = f"worker-{index}-{counts[index]}"
                    concurrent_errors += await lifecycle(client, name, mine)
                    counts[index] += 1

        await asyncio.gather(*(worker(i) for i in range(args.workers)))
        elapsed = time.monotonic() - started
        cpu = {
            name: round(100 * (cpu_seconds(pid) - before[name]) / elapsed, 1)
            for name, pid in pids.items()
        }
    return {
        "catalog": {
            **Summary.of_seconds(reads).to_json(),
            "per_s": round(len(reads) / sum(reads), 1),
        },
        "lifecycle": {"cycles": args.cycles, "errors": errors, "steps": sequential},
        "concurrent": {
            "workers": args.workers,
            "seconds": round(elapsed, 2),
            "lifecycles": sum(counts),
            "lifecycles_per_s": round(sum(counts) / elapsed, 2),
            "errors": concurrent_errors,
            "cpu_percent": cpu,
        },
    }


def print_figures(figures: dict[str, Any]) -> None:
    rows = [
        [step, s["count"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"]]
        for step, s in figures["lifecycle"]["steps"].items()
    ]
    catalog = figures["catalog"]
    rows.insert(
        0,
        [
            "catalog",
            catalog["count"],
            catalog["p50_ms"],
            catalog["p90_ms"],
            catalog["p99_ms"],
            catalog["max_ms"],
        ],
    )
    print(report.table(["request", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows))
    c = figures["concurrent"]
    print(
        f"\n{c['workers']} concurrent platforms: {c['lifecycles_per_s']} lifecycles/s "
        f"({c['lifecycles']} in {c['seconds']} s, {c['errors']} errors); CPU % "
        + ", ".join(f"{k} {v}" for k, v in c["cpu_percent"].items())
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as work:
        figures = asyncio.run(measure(args, pathlib.Path(work)))
    print_figures(figures)
    if not args.no_write:
        print(f"\nwritten to {report.write_result(NAME, figures)}")
    return 0
