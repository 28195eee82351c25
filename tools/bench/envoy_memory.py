"""Benchmark: the memory of every sidecar Envoy of the Bookinfo mesh (and of the rest).

Brings the local Bookinfo mesh up (127.0.9.x), loads every page path a few times so each
Envoy has served traffic, lets it settle, then reads for every pod its Envoy's RSS, PSS
and private memory (Private_Clean + Private_Dirty, from /proc/<pid>/smaps_rollup) and
Envoy's own heap figures (admin `/memory`), with the pod's pilot-agent and app, the
ingress gateway, Pilot and the config store for context.

Envoys map the same ~60 MB binary: RSS counts it in every one, PSS shares it out, private
memory is what one more sidecar really adds.

    PYTHONPATH=. .venv/bin/python tools/bench/envoy_memory.py
    bazel run //tools/bench:envoy_memory
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp

from tools.bench import benchmesh, procmem, report
from tools.local.topology import GATEWAY_HOST

NAME = "envoy_memory"
GATEWAY = "istio-ingressgateway"
ENVOY_ADMIN_PORT = 15000


async def warm_up(bench: benchmesh.BenchMesh, pages: int) -> None:
    """Every Envoy serves traffic: product pages through the gateway (all versions of reviews)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for _ in range(pages):
            async with session.get(bench.topology.productpage_url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"product page answered {response.status} during warm-up")


async def envoy_heap(ip: str) -> dict[str, float]:
    """Envoy's allocator figures from its admin `/memory`, in MiB."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://{ip}:{ENVOY_ADMIN_PORT}/memory") as response,
    ):
        data = await response.json(content_type=None)
    return {
        f"{key}_mib": round(int(data[key]) / 2**20, 1)
        for key in ("allocated", "heap_size", "pageheap_unmapped")
        if key in data
    }


async def measure(bench: benchmesh.BenchMesh) -> dict[str, Any]:
    pods: list[dict[str, Any]] = []
    pod_names = [p.name for p in bench.topology.pods] + [GATEWAY]
    for pod in pod_names:
        agent = bench.process(GATEWAY if pod == GATEWAY else f"{pod}-proxy")
        envoy = procmem.envoy_of(agent.pid, bench.bootstrap_path(pod))
        if envoy is None:
            raise RuntimeError(f"no Envoy found for {pod} (agent pid {agent.pid})")
        ip = f"{bench.topology.subnet}.{GATEWAY_HOST}" if pod == GATEWAY else bench.ip(pod)
        entry: dict[str, Any] = {
            "pod": pod,
            "envoy": {"pid": envoy, **procmem.read_memory(envoy).to_json()},
            "envoy_heap": await envoy_heap(ip),
            "agent": {"pid": agent.pid, **procmem.read_memory(agent.pid).to_json()},
        }
        if pod != GATEWAY:
            app = bench.process(pod)
            entry["app"] = {"pid": app.pid, **procmem.read_memory(app.pid).to_json()}
        pods.append(entry)
    control = {
        name: {
            "pid": bench.process(name).pid,
            **procmem.read_memory(bench.process(name).pid).to_json(),
        }
        for name in ("pilot-discovery", "config-store")
    }
    return {"pods": pods, "control_plane": control, "totals": totals(pods, control)}


def totals(pods: list[dict[str, Any]], control: dict[str, Any]) -> dict[str, Any]:
    sidecars = [p for p in pods if p["pod"] != GATEWAY]

    def mean(role: str, key: str, among: list[dict[str, Any]]) -> float:
        return round(sum(p[role][key] for p in among) / len(among), 1)

    def total(role: str, key: str) -> float:
        return round(sum(p[role][key] for p in pods if role in p), 1)

    everything = sum(total(role, "pss_mib") for role in ("envoy", "agent", "app")) + sum(
        c["pss_mib"] for c in control.values()
    )
    return {
        "sidecar_envoy_mean": {
            key: mean("envoy", key, sidecars) for key in ("rss_mib", "pss_mib", "private_mib")
        },
        "sidecar_agent_mean": {
            key: mean("agent", key, sidecars) for key in ("rss_mib", "pss_mib", "private_mib")
        },
        "envoys_pss_mib": total("envoy", "pss_mib"),
        "envoys_private_mib": total("envoy", "private_mib"),
        "agents_pss_mib": total("agent", "pss_mib"),
        "apps_pss_mib": total("app", "pss_mib"),
        "mesh_pss_mib": round(everything, 1),
    }


def print_figures(result: dict[str, Any]) -> None:
    rows = []
    for pod in result["pods"]:
        envoy, agent, app = pod["envoy"], pod["agent"], pod.get("app")
        rows.append(
            [
                pod["pod"],
                envoy["rss_mib"],
                envoy["pss_mib"],
                envoy["private_mib"],
                pod["envoy_heap"].get("allocated_mib", "-"),
                agent["pss_mib"],
                agent["private_mib"],
                app["pss_mib"] if app else "-",
                app["private_mib"] if app else "-",
            ]
        )
    headers = [
        "pod",
        "envoy RSS",
        "envoy PSS",
        "envoy priv",
        "envoy heap",
        "agent PSS",
        "agent priv",
        "app PSS",
        "app priv",
    ]
    print("MiB; heap = Envoy's allocated bytes (admin /memory)")
    print(report.table(headers, rows))
    control = [
        [name, m["rss_mib"], m["pss_mib"], m["private_mib"]]
        for name, m in result["control_plane"].items()
    ]
    print(report.table(["control plane", "RSS", "PSS", "private"], control))
    t = result["totals"]
    e = t["sidecar_envoy_mean"]
    print(
        f"per sidecar Envoy (mean): RSS {e['rss_mib']} MiB, PSS {e['pss_mib']} MiB, "
        f"private {e['private_mib']} MiB; all Envoys PSS {t['envoys_pss_mib']} MiB; "
        f"whole mesh PSS {t['mesh_pss_mib']} MiB"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=30, help="product pages loaded to warm up")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle before reading")
    parser.add_argument("--subnet", default="127.0.9", help="loopback /24 for the mesh")
    return parser.parse_args(argv)


async def run(bench: benchmesh.BenchMesh, args: argparse.Namespace) -> dict[str, Any]:
    await warm_up(bench, args.pages)
    await asyncio.sleep(args.settle)
    result = await measure(bench)
    return {"config": {"warm_up_pages": args.pages, "settle_s": args.settle}, **result}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with benchmesh.running_mesh(NAME, args.subnet) as bench:
        result = asyncio.run(run(bench, args))
    print_figures(result)
    print(f"written to {report.write_result(NAME, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(benchmesh.interruptible(main))
