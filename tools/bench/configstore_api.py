"""The config store's Kubernetes API: how long each kind of request takes.

Starts the store as its own process (127.0.0.1, a free port, a fresh SQLite file), then, one
request at a time over one keep-alive connection: creates (each committed to SQLite with an
fsync before its answer), the same creates as dry runs, merge patches, JSON patches and
server-side applies (each a real change), lists of 1,000 objects (all, with a label selector
matching a tenth, as a Table), the OpenAPI documents (the first request builds them), and
kubectl get against it. Prints a table and writes tools/bench/results/configstore_api.json.

    PYTHONPATH=. .venv/bin/python tools/bench/configstore_api.py [--writes 300] [--objects 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from pilot.configstore.testing import Kubectl, StoreProcess
from tools.bench import report
from tools.bench.stats import Summary

VS = "/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def vs(name: str, subset: str = "v1", app: str = "reviews") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name, "subset": subset}}]}],
        },
    }


async def timed(count: int, request: Callable[[int], Awaitable[None]]) -> Summary:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await request(i)
        samples.append(time.perf_counter() - started)
    return Summary.of_seconds(samples)


async def measure(url: str, writes: int, objects: int) -> dict[str, Summary | float]:
    out: dict[str, Summary | float] = {}
    async with aiohttp.ClientSession(base_url=url) as http:

        async def send(method: str, path: str, body: Any = None, **headers: str) -> Any:
            kw: dict[str, Any] = {"json": body} if isinstance(body, dict | list) else {}
            if headers:
                kw["headers"] = headers
            async with http.request(method, path, **kw) as response:
                answer = await response.read()
                if response.status >= 300:
                    raise RuntimeError(f"{method} {path}: {response.status} {answer[:300]!r}")
                return answer

        started = time.perf_counter()
        await send("GET", "/openapi/v3/apis/networking.istio.io/v1")
        out["openapi_first_request_ms"] = (time.perf_counter() - started) * 1e3
        out["openapi_v3_group"] = await timed(
            20, lambda i: send("GET", "/openapi/v3/apis/networking.istio.io/v1")
        )
        out["openapi_v2_protobuf"] = await timed(
            20, lambda i: send("GET", "/openapi/v2", Accept=PROTOBUF)
        )
        path = VS.format(ns="writes")
        out["create"] = await timed(writes, lambda i: send("POST", path, vs(f"w{i}")))
        out["create_dry_run"] = await timed(
            writes, lambda i: send("POST", path + "?dryRun=All", vs(f"d{i}"))
        )

        def subset(i: int) -> str:
            return "v2" if i % 2 == 0 else "v1"

        out["merge_patch"] = await timed(
            writes,
            lambda i: send(
                "PATCH",
                f"{path}/w{i}",
                {"spec": {"gateways": [f"g{i}"]}},
                **{"Content-Type": "application/merge-patch+json"},
            ),
        )
        out["json_patch"] = await timed(
            writes,
            lambda i: send(
                "PATCH",
                f"{path}/w{i}",
                [{"op": "replace", "path": "/spec/gateways/0", "value": f"h{i}"}],
                **{"Content-Type": "application/json-patch+json"},
            ),
        )
        out["server_side_apply"] = await timed(
            writes,
            lambda i: send(
                "PATCH",
                f"{path}/w{i % 10}?fieldManager=bench&force=true",
                vs(f"w{i % 10}", subset=subset(i // 10)),
                **{"Content-Type": "application/apply-patch+yaml"},
            ),
        )
        listed = VS.format(ns="lists")
        for i in range(objects):
            await send("POST", listed, vs(f"l{i}", app="a" if i % 10 == 0 else "b"))
        out[f"list_{objects}"] = await timed(20, lambda i: send("GET", listed))
        out[f"list_{objects}_selector"] = await timed(
            20, lambda i: send("GET", listed + "?labelSelector=app%3Da")
        )
        out[f"list_{objects}_table"] = await timed(20, lambda i: send("GET", listed, Accept=TABLE))
    return out


def kubectl_get(url: str, home: pathlib.Path, runs: int = 5) -> Summary | None:
    if not shutil.which("kubectl"):
        return None
    kubectl = Kubectl(url, home, namespace="lists")
    kubectl.run("get", "vs", "-o", "name")  # fills kubectl's discovery cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        kubectl.run("get", "vs")
        samples.append(time.perf_counter() - started)
    return Summary.of_seconds(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300, help="requests per kind of write")
    parser.add_argument("--objects", type=int, default=1000, help="objects in the listed namespace")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="configstore-bench-") as scratch,
        StoreProcess(pathlib.Path(scratch) / "config.db") as store,
    ):
        figures = asyncio.run(measure(store.url, args.writes, args.objects))
        try:
            got = kubectl_get(store.url, pathlib.Path(scratch) / "home")
        except (AssertionError, subprocess.TimeoutExpired) as error:
            print(f"kubectl get not measured: {error}", file=sys.stderr)
            got = None
        if got is not None:
            figures[f"kubectl_get_{args.objects}"] = got
    rows = [
        [name, s.count, s.p50, s.p90, s.p99]
        for name, s in figures.items()
        if isinstance(s, Summary)
    ]
    print(report.table(["request", "n", "p50 ms", "p90 ms", "p99 ms"], rows))
    print(
        f"first OpenAPI request (builds every document): {figures['openapi_first_request_ms']:.0f} ms"
    )
    path = report.write_result(
        "configstore_api",
        {
            "writes": args.writes,
            "objects": args.objects,
            "figures": {
                name: s.to_json() if isinstance(s, Summary) else round(s, 1)
                for name, s in figures.items()
            },
        },
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
