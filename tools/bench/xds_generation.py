"""Benchmark: Pilot's config generation time and memory for meshes of 100 and 1000 services.

For each size, a synthetic mesh (`synthetic.py`: per service a ServiceEntry, 3
WorkloadEntries v1..v3, a DestinationRule with 3 subsets; a VirtualService for every third,
bound to the mesh and an ingress Gateway) is

1. generated in this process: the time of building the push context (the ServiceEntry
   registry from nothing, its index, `build_push_context`), and of each generator
   (CDS, LDS, RDS, and EDS for every EDS cluster CDS returned) for one sidecar and one
   router, each the median of --runs runs, with the number and encoded size of resources;
2. served by a real `pilot-discovery`: a config store and Pilot are started as
   `tools/local/topology.py` starts them (on 127.0.10.100), the config is written to the
   store with the ConfigClient, then --clients ADS clients (9 sidecars and 1 router by
   default, `pkg/xds/testing.py`'s XdsDriver over gRPC) fetch and ACK CDS, EDS, LDS and
   RDS; Pilot's VmRSS (/proc/<pid>/status) and PSS (smaps_rollup) are read empty, loaded,
   and with every client synced.

    PYTHONPATH=. .venv/bin/python tools/bench/xds_generation.py [--sizes 100 1000] [--runs 5]
    bazel run //tools/bench:xds_generation
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import pathlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from pilot.model.push_context import PushContext
from pilot.networking import generator
from pilot.networking.testing import push_of
from pilot.xds.testing import node
from pkg.config.resource import Resource
from pkg.xds.testing import XdsDriver, unpack
from tools.bench import benchmesh, procmem, report, synthetic
from tools.bench.stats import median
from tools.bench.storeload import load_store, wait_pilot_has
from tools.local import launcher
from tools.local.topology import XDS_PORT, Topology

NAME = "xds_generation"
TYPES = (
    ("CDS", generator.CLUSTER),
    ("EDS", generator.ENDPOINT),
    ("LDS", generator.LISTENER),
    ("RDS", generator.ROUTE),
)
T = TypeVar("T")


def timed(fn: Callable[[], T], runs: int) -> tuple[dict[str, float], T]:
    """Median and minimum milliseconds of `runs` calls, and the last call's result."""
    times = []
    result: T
    for _ in range(runs):
        gc.collect()  # a collection left over from the last run must not land in this one
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return {
        "median_ms": round(median(times) * 1e3, 2),
        "min_ms": round(min(times) * 1e3, 2),
    }, result


def eds_names(clusters: list[cluster_pb2.Cluster]) -> list[str]:
    return [
        c.eds_cluster_config.service_name or c.name
        for c in clusters
        if c.type == cluster_pb2.Cluster.EDS
    ]


def route_names(listeners: list[listener_pb2.Listener]) -> list[str]:
    """The RDS names the listeners' HTTP connection managers ask for."""
    names = []
    for listener in listeners:
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                hcm = hcm_pb2.HttpConnectionManager()
                if network_filter.typed_config.Unpack(hcm) and hcm.HasField("rds"):
                    names.append(hcm.rds.route_config_name)
    return names


# In-process generation.


def generation(
    proxy: synthetic.ProxySpec, push: PushContext, runs: int
) -> dict[str, dict[str, Any]]:
    """Each type in Envoy's order; EDS asks for CDS's EDS clusters, RDS for LDS's routes."""
    out: dict[str, dict[str, Any]] = {}
    produced: dict[str, list[Any]] = {}
    for short, type_url in TYPES:
        if type_url == generator.ENDPOINT:
            requested = eds_names(produced[generator.CLUSTER])
        elif type_url == generator.ROUTE:
            requested = route_names(produced[generator.LISTENER])
        else:
            requested = []
        generate = functools.partial(generator.generate, proxy, type_url, requested, push)

        def first_proxy(generate: Callable[[], Any] = generate) -> Any:
            # The first proxy of a push builds what later proxies with the same view share.
            push.memo.clear()
            return generate()

        timing, resources = timed(first_proxy, runs)
        shared_timing, _ = timed(generate, runs)
        produced[type_url] = [m for _, m in resources]
        out[short] = {
            **timing,
            "next_proxy_median_ms": shared_timing["median_ms"],
            "resources": len(resources),
            "bytes": sum(m.ByteSize() for _, m in resources),
        }
    return out


def in_process(resources: list[Resource], runs: int) -> dict[str, Any]:
    configs = synthetic.by_kind(resources)
    push_timing, push = timed(lambda: push_of(configs), runs)
    sidecar = synthetic.sidecars(len(push.services), 1)[0]
    return {
        "build_push_context": push_timing,
        "sidecar": generation(sidecar, push, runs),
        "router": generation(synthetic.router(), push, runs),
    }


# A real Pilot.


class ControlPlane:
    """The config store and pilot-discovery processes, as the local mesh starts them."""

    def __init__(self, subnet: str) -> None:
        self.run_dir = pathlib.Path(tempfile.mkdtemp(prefix="bench-xds-"))
        self.topology = Topology(
            run_dir=self.run_dir, subnet=subnet, control_address=f"{subnet}.100"
        )
        self.started: dict[str, launcher.Started] = {}

    async def start(self) -> None:
        for spec in self.topology.control_plane():
            self.started[spec.name] = launcher.start(self.topology.log_dir, spec)
            launcher.record(self.run_dir, self.started.values())
            await launcher.wait_ready([spec], self.started, 60)

    def stop(self, *, keep_logs: bool) -> None:
        launcher.stop(self.run_dir)
        if keep_logs:
            benchmesh.dump_logs(self.topology.log_dir)
            print(f"logs kept in {self.run_dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def memory(self, name: str) -> dict[str, float]:
        return procmem.read_memory(self.started[name].pid).to_json()


async def sync_client(driver: XdsDriver, timeout: float) -> dict[str, int]:
    """Fetch and ACK CDS, EDS, LDS, RDS as Envoy does at start-up; resources per type."""
    counts = {}

    async def fetch(type_url: str, names: list[str]) -> Any:
        await driver.request(type_url, names)
        response = await driver.expect_response(type_url, timeout=timeout)
        await driver.ack(response)
        return response

    cds = await fetch(generator.CLUSTER, [])
    counts["CDS"] = len(cds.resources)
    eds = await fetch(generator.ENDPOINT, eds_names(unpack(cds, cluster_pb2.Cluster)))
    counts["EDS"] = len(eds.resources)
    lds = await fetch(generator.LISTENER, [])
    counts["LDS"] = len(lds.resources)
    rds = await fetch(generator.ROUTE, route_names(unpack(lds, listener_pb2.Listener)))
    counts["RDS"] = len(rds.resources)
    return counts


async def served(
    services: int, resources: list[Resource], args: argparse.Namespace
) -> dict[str, Any]:
    plane = ControlPlane(args.subnet)
    failed = True
    try:
        await plane.start()
        empty = plane.memory("pilot-discovery")
        load_seconds = await load_store(plane.topology.config_store_url, resources, 8)
        await wait_pilot_has(plane.topology.pilot_http_url, len(resources))
        loaded = plane.memory("pilot-discovery")
        proxies = [*synthetic.sidecars(services, args.clients - 1), synthetic.router()]
        target = f"{plane.topology.control_address}:{XDS_PORT}"
        async with contextlib.AsyncExitStack() as stack:
            drivers = [
                await stack.enter_async_context(
                    XdsDriver.ads(
                        target, node(p.node_id, cluster=p.pod, metadata={"LABELS": dict(p.labels)})
                    )
                )
                for p in proxies
            ]
            started = time.perf_counter()
            counts = await asyncio.gather(*(sync_client(d, args.sync_timeout) for d in drivers))
            sync_seconds = time.perf_counter() - started
            await asyncio.sleep(0.5)
            synced = plane.memory("pilot-discovery")
            store = plane.memory("config-store")
        failed = False
    except (asyncio.CancelledError, KeyboardInterrupt):
        failed = False  # stopped on purpose: no logs to look at
        raise
    finally:
        plane.stop(keep_logs=failed)
    return {
        "store_load_s": round(load_seconds, 2),
        "clients": len(proxies),
        "initial_sync_all_clients_s": round(sync_seconds, 2),
        "resources_per_client": {
            "sidecar": counts[0],
            "router": counts[-1],
        },
        "pilot_memory": {"empty": empty, "loaded": loaded, "clients_synced": synced},
        "config_store_memory": store,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for services in args.sizes:
        started = time.perf_counter()
        resources = synthetic.resources(services)
        load_ms = (time.perf_counter() - started) * 1e3
        counts: dict[str, int] = {}
        for resource in resources:
            counts[resource.schema.kind] = counts.get(resource.schema.kind, 0) + 1
        entry: dict[str, Any] = {
            "resources": counts,
            "load_objects_ms": round(load_ms, 1),
            **in_process(resources, args.runs),
        }
        print_generation(services, entry)
        if not args.skip_pilot:
            entry["pilot_process"] = await served(services, resources, args)
            print_pilot(services, entry["pilot_process"])
        sizes[str(services)] = entry
    return {
        "config": {
            "sizes": args.sizes,
            "runs": args.runs,
            "clients": args.clients,
            "mesh": "per service: ServiceEntry, 3 WorkloadEntries, DestinationRule "
            "(3 subsets); VirtualService for every third (mesh + gateway)",
        },
        "sizes": sizes,
    }


def print_generation(services: int, entry: dict[str, Any]) -> None:
    push = entry["build_push_context"]
    print(
        f"\n{services} services ({sum(entry['resources'].values())} resources, "
        f"loaded in {entry['load_objects_ms']:.0f} ms): "
        f"build_push_context median {push['median_ms']} ms"
    )
    rows = []
    for proxy in ("sidecar", "router"):
        for short, _ in TYPES:
            data = entry[proxy][short]
            rows.append(
                [
                    proxy,
                    short,
                    data["median_ms"],
                    data["min_ms"],
                    data["next_proxy_median_ms"],
                    data["resources"],
                    round(data["bytes"] / 1024, 1),
                ]
            )
    print(
        report.table(
            ["proxy", "type", "first proxy ms", "min ms", "next proxy ms", "resources", "KiB"], rows
        )
    )


def print_pilot(services: int, data: dict[str, Any]) -> None:
    memory = data["pilot_memory"]
    rows = [[stage, m["rss_mib"], m["pss_mib"], m["private_mib"]] for stage, m in memory.items()]
    print(
        f"pilot-discovery with {services} services: store loaded in {data['store_load_s']} s, "
        f"{data['clients']} ADS clients synced in {data['initial_sync_all_clients_s']} s"
    )
    print(report.table(["pilot memory (MiB)", "RSS", "PSS", "private"], rows))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measure (median)")
    parser.add_argument("--clients", type=int, default=10, help="ADS clients (last is a router)")
    parser.add_argument("--sync-timeout", type=float, default=120.0, help="seconds per response")
    parser.add_argument("--skip-pilot", action="store_true", help="in-process generation only")
    parser.add_argument("--subnet", default="127.0.10", help="loopback /24 for the control plane")
    args = parser.parse_args(argv)
    if args.clients < 2:
        parser.error("--clients must be at least 2 (sidecars and one router)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    print(f"written to {report.write_result(NAME, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(benchmesh.interruptible(main))
