"""Benchmark: request latency through the mesh at a fixed request rate (open loop).

Brings the local Bookinfo mesh up (127.0.9.x) and, for each path below, sends requests at
a fixed rate (default 100/s for 10 s, after 2 s of warm-up at the same rate), each due at
a fixed time and timed from that due time (no coordinated omission):

- direct:           the details app itself (`http://<details ip>:9080/details/0`), no Envoy;
- inbound_sidecar:  details' sidecar inbound listener (`<details ip>:15006`), 1 Envoy;
- outbound_sidecar: as productpage calls details: its sidecar as HTTP proxy, then details'
                    inbound sidecar (endpoints of meshed workloads are their inbound
                    listeners), 2 Envoys;
- gateway:          the ingress gateway, then details' inbound sidecar, 2 Envoys, through a
                    temporary VirtualService on bookinfo-gateway (prefix /details, host
                    `details.bench.local`), removed afterwards;
- productpage:      the product page through the gateway: productpage calls details and
                    reviews, reviews v2/v3 call ratings, each hop through two Envoys.

The generator (aiohttp, one process) reports the rate it achieved, how late it started
requests and its CPU use, so a saturated generator shows instead of passing for latency.

    PYTHONPATH=. .venv/bin/python tools/bench/latency.py [--rate 100] [--duration 10]
    bazel run //tools/bench:latency
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from pkg.config import loader
from pkg.kube.client import ConfigClient
from tools.bench import benchmesh, loadgen, report

NAME = "latency"
GATEWAY_PORT = 8080
BENCH_HOST = "details.bench.local"
GATEWAY_ROUTE = f"""\
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: bench-details
  namespace: default
spec:
  hosts:
  - {BENCH_HOST}
  gateways:
  - bookinfo-gateway
  http:
  - match:
    - uri:
        prefix: /details
    route:
    - destination:
        host: details
        port:
          number: 9080
"""


@dataclasses.dataclass(frozen=True)
class Path:
    name: str
    envoys: str  # how many Envoys a request crosses, for the reader
    url: str
    proxy: str | None = None
    host: str | None = None


def paths(bench: benchmesh.BenchMesh) -> list[Path]:
    details = bench.ip("details-v1")
    gateway = f"http://{bench.topology.gateway_address}:{GATEWAY_PORT}"
    return [
        Path("direct", "0", f"http://{details}:9080/details/0"),
        Path("inbound_sidecar", "1", f"http://{details}:15006/details/0"),
        Path(
            "outbound_sidecar",
            "2",
            "http://details:9080/details/0",
            proxy=bench.outbound_proxy("productpage-v1"),
        ),
        Path("gateway", "2", f"{gateway}/details/0", host=BENCH_HOST),
        Path("productpage", "2 + 2 per call (3 calls)", f"{gateway}/productpage"),
    ]


def requester(session: aiohttp.ClientSession, path: Path) -> Callable[[], Awaitable[None]]:
    headers = {"Host": path.host} if path.host else None

    async def request() -> None:
        async with session.get(path.url, proxy=path.proxy, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")

    return request


async def measure(path: Path, args: argparse.Namespace) -> loadgen.LoadResult:
    connector = aiohttp.TCPConnector(limit=0)  # no pool cap: a queue here would be ours
    async with aiohttp.ClientSession(connector=connector) as session:
        request = requester(session, path)
        await loadgen.run_open_loop(request, rate=args.rate, duration=args.warm_up)
        return await loadgen.run_open_loop(request, rate=args.rate, duration=args.duration)


async def wait_routed(path: Path, timeout: float = 15.0) -> None:
    """Until the gateway serves the temporary route (Pilot pushed it)."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            try:
                await requester(session, path)()
                return
            except (aiohttp.ClientError, RuntimeError):
                await asyncio.sleep(0.05)


async def run(bench: benchmesh.BenchMesh, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    [route] = loader.load_text(GATEWAY_ROUTE, source="latency.py")
    async with ConfigClient(bench.topology.config_store_url) as client:
        await client.apply(route)
        try:
            for path in paths(bench):
                if args.only and path.name not in args.only:
                    continue
                if path.name == "gateway":
                    await wait_routed(path)
                started = time.monotonic()
                result = await measure(path, args)
                data = result.to_json()
                results[path.name] = {"envoys": path.envoys, "url": path.url, **data}
                _print_path(path, data, time.monotonic() - started)
        finally:
            await client.delete(route.schema, route.metadata.name, route.metadata.namespace)
    return {
        "config": {"rate": args.rate, "duration_s": args.duration, "warm_up_s": args.warm_up},
        "paths": results,
    }


def _print_path(path: Path, data: dict[str, Any], took: float) -> None:
    latency = data["latency"] or {}
    print(
        f"{path.name:17} p50 {latency.get('p50_ms', float('nan')):7.2f}  "
        f"p90 {latency.get('p90_ms', float('nan')):7.2f}  "
        f"p99 {latency.get('p99_ms', float('nan')):7.2f}  "
        f"max {latency.get('max_ms', float('nan')):7.2f} ms; "
        f"{data['ok']}/{data['sent']} ok at {data['achieved_rate']}/s, "
        f"send lag p99 {data['send_lag_p99_ms']} ms, generator CPU "
        f"{data['generator_cpu_percent']}% ({took:.0f} s)",
        flush=True,
    )
    for sample in data["error_samples"]:
        print(f"    error: {sample}", flush=True)


def print_figures(result: dict[str, Any]) -> None:
    rows = []
    for name, data in result["paths"].items():
        latency = data["latency"] or {}
        service = data["service_time"] or {}
        rows.append(
            [
                name,
                data["envoys"],
                latency.get("p50_ms", "-"),
                latency.get("p90_ms", "-"),
                latency.get("p99_ms", "-"),
                latency.get("max_ms", "-"),
                service.get("p50_ms", "-"),
                data["achieved_rate"],
                data["errors"],
            ]
        )
    print(
        f"at {result['config']['rate']} req/s for {result['config']['duration_s']} s "
        "(latency from each request's due time; service time from its actual start):"
    )
    print(
        report.table(
            [
                "path",
                "Envoys",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "service p50",
                "req/s",
                "errors",
            ],
            rows,
        )
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests a second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per path")
    parser.add_argument("--warm-up", type=float, default=2.0, help="seconds sent, not measured")
    parser.add_argument(
        "--only", action="append", default=[], metavar="PATH", help="measure only this path"
    )
    parser.add_argument("--subnet", default="127.0.9", help="loopback /24 for the mesh")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with benchmesh.running_mesh(NAME, args.subnet) as bench:
        result = asyncio.run(run(bench, args))
    print_figures(result)
    if args.only:
        print("(--only: a partial run, results file left as it was)")
    else:
        print(f"written to {report.write_result(NAME, result)}")
    return 0 if all(p["errors"] == 0 for p in result["paths"].values()) else 1


if __name__ == "__main__":
    sys.exit(benchmesh.interruptible(main))
