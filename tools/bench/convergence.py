"""Benchmark: how long a route change takes to reach every sidecar of the Bookinfo mesh.

Brings the local Bookinfo mesh up (127.0.9.x), routes all reviews traffic to v1, then
flips the reviews VirtualService between v1 and v3, N times by `istioctl apply -f` and N
times by a ConfigClient write. For each change, every sidecar (productpage, details,
reviews-v1..v3, ratings) is polled concurrently, through its outbound listener as its app
uses it (HTTP proxy `http://<pod ip>:15001`, `GET http://reviews:9080/reviews/0`), until
the `podname` it answers is the new version. A change has converged when the last
sidecar has. Times are measured

- istioctl: from just before the `istioctl apply` process starts (what a user waits),
  and that process's own run time (mostly Python start-up);
- ConfigClient: from the store's acknowledgement of the write (the update returning),
  which leaves out istioctl's start-up, and from just before the write.

A sidecar's time is when its first answer from the new version arrived, so it overstates
the switch by at most one poll interval plus one request's round trip (a few ms). Polling
is load too: six sidecars polled every 2 ms kept both cores busy enough to add ~20 ms to
every change; every 5 ms (the default) measured the same as every 20 ms.

    PYTHONPATH=. .venv/bin/python tools/bench/convergence.py [--changes 20]
    bazel run //tools/bench:convergence -- --changes 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from pkg.config import loader
from pkg.kube.client import ConfigClient
from tools.bench import benchmesh, report
from tools.bench.stats import Summary
from tools.local.topology import ROOT

NAME = "convergence"
REVIEWS_URL = "http://reviews:9080/reviews/0"
DESTINATION_RULES = ROOT / "samples/bookinfo/networking/destination-rule-all.yaml"
VERSIONS = ("reviews-v1", "reviews-v3")


def reviews_route(pod: str) -> str:
    """The reviews VirtualService sending all traffic to one subset (`reviews-v3` -> v3)."""
    subset = pod.removeprefix("reviews-")
    return (
        "apiVersion: networking.istio.io/v1alpha3\n"
        "kind: VirtualService\n"
        "metadata:\n  name: reviews\n  namespace: default\n"
        "spec:\n  hosts:\n  - reviews\n  http:\n  - route:\n"
        f"    - destination:\n        host: reviews\n        subset: {subset}\n"
    )


@dataclasses.dataclass
class Change:
    index: int
    via: str  # istioctl | client
    target: str  # the reviews pod every sidecar must reach afterwards
    reached: dict[str, float | None]  # sidecar -> seconds after `started` (None: deadline)
    write: float  # istioctl's run time, or the ConfigClient update's round trip
    acked: float = 0.0  # client: seconds from `started` to the store's acknowledgement
    pushes: int = 0  # Pilot pushes the change caused

    @property
    def converged(self) -> float | None:
        times = list(self.reached.values())
        return None if None in times else max(t for t in times if t is not None)

    @property
    def first(self) -> float | None:
        times = [t for t in self.reached.values() if t is not None]
        return min(times) if times else None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "via": self.via,
            "target": self.target,
            "converged_ms": _ms(self.converged),
            "write_ms": _ms(self.write),
            "acked_ms": _ms(self.acked) if self.via == "client" else None,
            "pushes": self.pushes,
            "sidecars_ms": {pod: _ms(t) for pod, t in self.reached.items()},
        }


class Poller:
    """Polls every sidecar for the reviews pod it routes to."""

    def __init__(self, bench: benchmesh.BenchMesh, interval: float, deadline: float) -> None:
        self.bench = bench
        self.interval = interval
        self.deadline = deadline
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))

    async def close(self) -> None:
        await self.session.close()

    async def served_by(self, pod: str) -> str | None:
        try:
            async with self.session.get(REVIEWS_URL, proxy=self.bench.outbound_proxy(pod)) as r:
                body = await r.read()
            return json.loads(body).get("podname") if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError):
            return None

    async def until(self, pod: str, target: str, started: float) -> float | None:
        """Seconds after `started` when `pod`'s sidecar first routed to `target`."""
        stop = started + self.deadline
        while time.perf_counter() < stop:
            if await self.served_by(pod) == target:
                return time.perf_counter() - started
            await asyncio.sleep(self.interval)
        return None

    @contextlib.asynccontextmanager
    async def polling(
        self, target: str, started: float
    ) -> AsyncIterator[Callable[[], Awaitable[dict[str, float | None]]]]:
        """Poll every sidecar meanwhile; the yielded coroutine waits for all of them."""
        tasks = {
            p.name: asyncio.create_task(self.until(p.name, target, started), name=f"poll-{p.name}")
            for p in self.bench.sidecar_pods
        }

        async def reached() -> dict[str, float | None]:
            return {pod: await task for pod, task in tasks.items()}

        try:
            yield reached
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)


async def pilot_status(session: aiohttp.ClientSession, bench: benchmesh.BenchMesh) -> dict:
    async with session.get(f"{bench.topology.pilot_http_url}/debug/syncz") as response:
        return await response.json()


async def wait_quiet(session: aiohttp.ClientSession, bench: benchmesh.BenchMesh) -> int:
    """Until every proxy acknowledged everything Pilot sent; returns Pilot's push count."""
    async with asyncio.timeout(15):
        while True:
            status = await pilot_status(session, bench)
            states = {t["state"] for p in status["proxies"] for t in p["types"].values()}
            if states <= {"SYNCED", "NOT SENT"}:
                return status["counters"]["pushes"]
            await asyncio.sleep(0.02)


async def by_istioctl(
    bench: benchmesh.BenchMesh, poller: Poller, index: int, target: str, path: str
) -> Change:
    started = time.perf_counter()
    async with poller.polling(target, started) as reached:
        process = await asyncio.create_subprocess_exec(
            *bench.istioctl_argv("apply", "-f", path),
            env=bench.istioctl_env(),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await process.communicate()
        finally:
            if process.returncode is None:  # interrupted: istioctl must not outlive us
                process.kill()
                await process.wait()
        write = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(f"istioctl apply failed ({process.returncode}): {err.decode()}")
        if b"configured" not in out:
            print(f"  istioctl said: {out.decode().strip()}", file=sys.stderr)
        return Change(index, "istioctl", target, await reached(), write)


async def by_client(
    bench: benchmesh.BenchMesh, poller: Poller, client: ConfigClient, index: int, target: str
) -> Change:
    [wanted] = loader.load_text(reviews_route(target), source=target)
    current = await client.get(wanted.schema, "reviews", "default")
    versioned = dataclasses.replace(
        wanted,
        metadata=dataclasses.replace(
            wanted.metadata, resource_version=current.metadata.resource_version
        ),
    )
    started = time.perf_counter()
    async with poller.polling(target, started) as reached:
        await client.update(versioned)
        acked = time.perf_counter() - started
        return Change(index, "client", target, await reached(), write=acked, acked=acked)


async def run(bench: benchmesh.BenchMesh, args: argparse.Namespace) -> dict[str, Any]:
    files = {}
    for pod in VERSIONS:
        files[pod] = bench.topology.run_dir / f"reviews-route-{pod}.yaml"
        files[pod].write_text(reviews_route(pod))
    await bench.mesh.apply_files(DESTINATION_RULES, files["reviews-v1"])

    poller = Poller(bench, args.poll_interval, args.deadline)
    changes: list[Change] = []
    try:
        async with (
            aiohttp.ClientSession() as session,
            ConfigClient(bench.topology.config_store_url) as client,
        ):
            async with poller.polling("reviews-v1", time.perf_counter()) as reached:
                initial = await reached()
            if None in initial.values():
                raise RuntimeError("not every sidecar routes reviews to v1 after the first apply")
            for via in ("istioctl", "client"):
                for index in range(args.changes):
                    pushes = await wait_quiet(session, bench)
                    await asyncio.sleep(args.pause)
                    target = VERSIONS[(index + 1) % 2]  # v3, v1, v3, ...
                    if via == "istioctl":
                        change = await by_istioctl(bench, poller, index, target, str(files[target]))
                    else:
                        change = await by_client(bench, poller, client, index, target)
                    change.pushes = await wait_quiet(session, bench) - pushes
                    changes.append(change)
                    _print_change(change)
    finally:
        await poller.close()
    return figures(changes, args)


def figures(changes: list[Change], args: argparse.Namespace) -> dict[str, Any]:
    def summary(values: list[float | None]) -> dict[str, Any] | None:
        done = [v for v in values if v is not None]
        return Summary.of_seconds(done).to_json() if done else None

    result: dict[str, Any] = {}
    for via in ("istioctl", "client"):
        mine = [c for c in changes if c.via == via]
        # Measured from istioctl's start, or from the store's acknowledgement.
        origin = "from_istioctl_start" if via == "istioctl" else "from_write_ack"
        entry: dict[str, Any] = {
            "changes": len(mine),
            "not_converged": sum(1 for c in mine if c.converged is None),
            origin: summary([_less(c.converged, c.acked) for c in mine]),
            f"first_sidecar_{origin}": summary(
                [_less(c.first, c.acked) for c in mine if c.converged is not None]
            ),
        }
        if via == "istioctl":
            entry["istioctl_process"] = summary([c.write for c in mine])
        else:
            entry["from_write_start"] = summary([c.converged for c in mine])
            entry["write_round_trip"] = summary([c.write for c in mine])
        result[via] = entry
    return {
        "config": {
            "changes_per_series": args.changes,
            "poll_interval_ms": args.poll_interval * 1e3,
            "deadline_s": args.deadline,
            "sidecars_polled": sorted(changes[0].reached) if changes else [],
        },
        "figures": result,
        "changes": [c.to_json() for c in changes],
    }


def _print_change(change: Change) -> None:
    total = change.converged
    slowest = max(change.reached, key=lambda p: change.reached[p] or float("inf"))
    head = f"{change.via:8} #{change.index:2} -> {change.target}: "
    if total is None:
        missing = [p for p, t in change.reached.items() if t is None]
        print(head + f"NOT converged (no answer from {', '.join(missing)})", flush=True)
        return
    extra = (
        f"istioctl ran {change.write * 1e3:.0f} ms"
        if change.via == "istioctl"
        else f"{(total - change.acked) * 1e3:.1f} ms after the ack"
    )
    print(
        head + f"{total * 1e3:.1f} ms ({extra}; last {slowest}; pushes {change.pushes})",
        flush=True,
    )


def print_figures(result: dict[str, Any]) -> None:
    rows = []
    for via, entry in result["figures"].items():
        for key, value in entry.items():
            if isinstance(value, dict):
                rows.append(
                    [
                        f"{via}: {key}",
                        value["count"],
                        value["p50_ms"],
                        value["p99_ms"],
                        value["max_ms"],
                    ]
                )
    print(report.table(["measure", "n", "p50 ms", "p99 ms", "max ms"], rows))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=20, help="route changes per series")
    parser.add_argument(
        "--poll-interval", type=float, default=0.005, help="seconds between one sidecar's polls"
    )
    parser.add_argument(
        "--deadline", type=float, default=10.0, help="seconds a change may take to converge"
    )
    parser.add_argument(
        "--pause", type=float, default=0.2, help="seconds of quiet before each change"
    )
    parser.add_argument("--subnet", default="127.0.9", help="loopback /24 for the mesh")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with benchmesh.running_mesh(NAME, args.subnet) as bench:
        result = asyncio.run(run(bench, args))
    print_figures(result)
    path = report.write_result(NAME, result)
    print(f"written to {path}")
    return 0 if all(e["not_converged"] == 0 for e in result["figures"].values()) else 1


def _less(value: float | None, offset: float) -> float | None:
    return None if value is None else value - offset


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 2)


if __name__ == "__main__":
    sys.exit(benchmesh.interruptible(main))
