"""Benchmark: Pilot serving a synthetic mesh of 1000 services to 100 and 2000 ADS streams.

A config store and a real `pilot-discovery` (from this tree, or from `--pilot-tree`, so an
older Pilot can be measured on the same machine in the same run) on 127.0.16.x; the mesh of
`synthetic.py` written to the store; then, for each proxy count, that many sidecar streams
from this process (`adsload.py`: each decodes only response headers and ACKs at once, as
Envoy does), and:

1. initial sync: every stream fetches and ACKs CDS, EDS, LDS, RDS (connected in waves);
2. endpoint change (`--changes` times): one WorkloadEntry's weight patched; the latency from
   the store's acknowledgement to each stream's next EDS response (every sidecar uses the
   clusters of every service); responses of other types meanwhile are counted;
3. VirtualService change: one route's weights patched; latency to each stream's next RDS;
4. full push: a new ServiceEntry (with an endpoint) added; the time until every stream has
   its new CDS, the EDS it then asks for (naming the new cluster) and its new RDS;
5. Pilot's CPU (utime + stime from /proc) during each phase, and its memory (RSS, PSS, peak).

    PYTHONPATH=. .venv/bin/python tools/bench/pilot_scale.py [--proxies 100 2000]
        [--services 1000] [--pilot-tree DIR --label before]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format, struct_pb2

from pkg.config import loader
from pkg.config.kinds import ALL
from pkg.config.resource import Resource
from pkg.kube.client import ConfigClient
from tools.bench import adsload, benchmesh, procmem, report, synthetic
from tools.bench.stats import percentile
from tools.bench.storeload import load_store, wait_pilot_has

NAME = "pilot_scale"
ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
STORE_PORT = 8001
XDS_PORT = 15010
HTTP_PORT = 15014
WORKLOAD_ENTRY = ALL.by_name("workloadentry")
VIRTUAL_SERVICE = ALL.by_name("virtualservice")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _arrival(stream: adsload.Stream, mark: float, type_url: str) -> float:
    """When `stream` first received `type_url` after `mark` (it did: the caller waited)."""
    received = stream.first_since(mark, type_url)
    assert received is not None
    return received.at


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (every thread), from /proc/<pid>/stat."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Process:
    def __init__(self, name: str, argv: list[str], tree: pathlib.Path, log_dir: pathlib.Path):
        env = {
            k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")
        }
        env["PYTHONPATH"] = str(tree)
        env["PYTHONUNBUFFERED"] = "1"
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                argv,
                cwd=tree,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


class ControlPlane:
    """The config store (this tree) and pilot-discovery (`pilot_tree`) on `address`."""

    def __init__(
        self,
        address: str,
        pilot_tree: pathlib.Path,
        log_level: str = "warning",
        profile: pathlib.Path | None = None,
    ) -> None:
        self.log_level = log_level
        self.profile = profile
        self.address = address
        self.pilot_tree = pilot_tree
        self.run_dir = pathlib.Path(tempfile.mkdtemp(prefix="bench-pilot-scale-"))
        self.store_url = f"http://{address}:{STORE_PORT}"
        self.pilot_url = f"http://{address}:{HTTP_PORT}"
        self.xds_target = f"{address}:{XDS_PORT}"
        self.processes: dict[str, Process] = {}

    async def start(self) -> None:
        python = sys.executable
        self.processes["config-store"] = Process(
            "config-store",
            [python, "-m", "pilot.configstore.main", "--address", self.address,
             "--port", str(STORE_PORT), "--db", str(self.run_dir / "store.db")],
            ROOT,
            self.run_dir,
        )  # fmt: skip
        await wait_url(f"{self.store_url}/healthz", self.processes["config-store"])
        profiler = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        self.processes["pilot-discovery"] = Process(
            "pilot-discovery",
            [python, *profiler, "-m", "pilot.cmd.discovery", "--config-store", self.store_url,
             "--grpc-address", self.xds_target, "--http-address", f"{self.address}:{HTTP_PORT}",
             "--log-level", self.log_level],
            self.pilot_tree,
            self.run_dir,
        )  # fmt: skip
        await wait_url(f"{self.pilot_url}/ready", self.processes["pilot-discovery"])

    @property
    def pilot_pid(self) -> int:
        return self.processes["pilot-discovery"].pid

    def pilot_memory(self) -> dict[str, float]:
        return procmem.read_memory(self.pilot_pid).to_json()

    def stop(self, *, keep_logs: bool) -> None:
        for name in ("pilot-discovery", "config-store"):
            if name in self.processes:
                self.processes[name].stop()
        if keep_logs:
            benchmesh.dump_logs(self.run_dir)
            print(f"logs kept in {self.run_dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)


async def wait_url(url: str, process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited; see {process.log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready in {timeout}s; see {process.log}")


def nodes(services: int, count: int) -> list[base_pb2.Node]:
    """`count` sidecars of the synthetic mesh (plaintext: no SDS), spread over namespaces."""
    out = []
    for spec in synthetic.sidecars(services, count):
        node = base_pb2.Node(id=spec.node_id, cluster=spec.pod)
        node.metadata.CopyFrom(
            json_format.ParseDict(
                {"NAMESPACE": spec.namespace, "LABELS": dict(spec.labels)}, struct_pb2.Struct()
            )
        )
        out.append(node)
    return out


def eds_names(response: bytes) -> list[str]:
    parsed = discovery_pb2.DiscoveryResponse.FromString(response)
    names = []
    for packed in parsed.resources:
        cluster = cluster_pb2.Cluster()
        packed.Unpack(cluster)
        if cluster.type == cluster_pb2.Cluster.EDS:
            names.append(cluster.eds_cluster_config.service_name or cluster.name)
    return sorted(names)


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1e3 for v in values)
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p90_ms": round(percentile(ms, 90), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(ms[-1], 1),
    }


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@contextlib.contextmanager
def pilot_cpu(plane: ControlPlane, into: dict[str, Any], key: str) -> Iterator[None]:
    """Pilot's CPU, this process's (the clients') and the wall time of the block."""
    before, client, started = cpu_seconds(plane.pilot_pid), own_cpu_seconds(), time.perf_counter()
    yield
    into[key] = {
        "pilot_cpu_s": round(cpu_seconds(plane.pilot_pid) - before, 2),
        "client_cpu_s": round(own_cpu_seconds() - client, 2),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def new_service_entry(index: int) -> Resource:
    host = f"bench-new-{index}.ns-0.svc.cluster.local"
    return loader.load_object(
        {
            "apiVersion": synthetic.GROUP,
            "kind": "ServiceEntry",
            "metadata": {"name": f"bench-new-{index}", "namespace": "ns-0"},
            "spec": {
                "hosts": [host],
                "location": "MESH_INTERNAL",
                "resolution": "STATIC",
                "ports": [{"number": synthetic.SERVICE_PORT, "name": "http", "protocol": "HTTP"}],
                # Config only (no traffic goes there); index runs to the proxy count, 2000.
                "endpoints": [{"address": f"127.21.{(index + 1) // 256}.{(index + 1) % 256}"}],
            },
        },
        source="bench",
    )


async def measure(plane: ControlPlane, services: int, proxies: int, args: argparse.Namespace):
    out: dict[str, Any] = {"proxies": proxies}
    all_nodes = nodes(services, proxies)
    async with (
        ConfigClient(plane.store_url, timeout=60) as client,
        adsload.ClientSet(
            plane.xds_target, all_nodes, streams_per_channel=args.streams_per_channel,
            sample_every=max(proxies // 4, 1),
        ) as clients,
    ):  # fmt: skip
        # The first stream's CDS tells every stream which EDS clusters to ask for.
        first = clients.streams[:1]
        await clients.connect(first)
        await clients.wait(
            lambda s: s.last(adsload.CLUSTER) is not None, timeout=120, streams=first
        )
        cds = next(iter(first[0].samples))
        base_eds = eds_names(cds)
        clients.names = {adsload.ENDPOINT: base_eds, adsload.ROUTE: ["http_proxy"]}
        clients.follow_on_start = {adsload.ENDPOINT, adsload.ROUTE}
        first_cds = first[0].last(adsload.CLUSTER)
        assert first_cds is not None  # waited for above
        await first[0].request(adsload.ENDPOINT, first_cds.nonce)
        await first[0].request(adsload.LISTENER)
        started = time.perf_counter()
        try:
            with pilot_cpu(plane, out, "initial_sync"):
                seconds = await clients.sync(
                    wave=args.wave,
                    timeout=args.timeout,
                    on_wave=lambda n: print(f"  {n} streams synced", flush=True),
                )
        except TimeoutError as error:
            # An older Pilot may not get there: say how far it got, measure nothing more.
            synced = sum(
                all(s.last(t) is not None for t in adsload.SYNC_ORDER) for s in clients.streams
            )
            out["initial_sync"] = {
                "error": str(error),
                "synced_streams": synced,
                "after_s": round(time.perf_counter() - started, 1),
                "pilot_cpu_s": round(cpu_seconds(plane.pilot_pid), 1),
            }
            out["memory_synced"] = plane.pilot_memory()
            print(f"{proxies} proxies: initial sync did not finish: {out['initial_sync']}")
            return out
        out["initial_sync"]["seconds"] = round(seconds, 2)
        out["memory_synced"] = plane.pilot_memory()
        print(f"{proxies} proxies synced in {seconds:.1f} s; Pilot {out['memory_synced']}")
        await asyncio.sleep(args.settle)

        async def change(name: str, write: Any, type_url: str) -> dict[str, Any]:
            latencies: list[float] = []
            others = 0
            spent = 0.0
            for step in range(args.changes):
                before = cpu_seconds(plane.pilot_pid)
                start = clients.mark()
                await write(step)
                acked = clients.mark()

                def received(s: adsload.Stream, acked: float = acked) -> bool:
                    return s.received_since(acked, type_url)

                await clients.wait(received, timeout=args.timeout)
                latencies += [_arrival(s, acked, type_url) - acked for s in clients.streams]
                await asyncio.sleep(args.settle)
                spent += cpu_seconds(plane.pilot_pid) - before
                others += sum(
                    1
                    for s in clients.streams
                    for r in s.log
                    if r.at >= start and r.type_url != type_url
                )
            result = {
                "to_each_proxy": summary(latencies),
                "to_every_proxy_max_ms": round(max(latencies) * 1e3, 1),
                "other_responses": others,
                "pilot_cpu_s_per_change": round(spent / args.changes, 3),
            }
            print(f"  {name}: {result}", flush=True)
            return result

        async def endpoint(step: int) -> None:
            await client.patch(
                WORKLOAD_ENTRY, "svc-1-v1", {"spec": {"weight": 10 + step}}, namespace="ns-1"
            )

        async def route(step: int) -> None:
            weights = (70, 30) if step % 2 == 0 else (80, 20)
            host = synthetic.hostname_of(0)
            patch = {
                "spec": {
                    "http": [
                        {
                            "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                            "route": [{"destination": {"host": host, "subset": "v2"}}],
                        },
                        {
                            "route": [
                                {
                                    "destination": {"host": host, "subset": "v1"},
                                    "weight": weights[0],
                                },
                                {
                                    "destination": {"host": host, "subset": "v3"},
                                    "weight": weights[1],
                                },
                            ]
                        },
                    ]
                }
            }
            await client.patch(VIRTUAL_SERVICE, "svc-0", patch, namespace="ns-0")

        out["endpoint_change"] = await change("endpoint change", endpoint, adsload.ENDPOINT)
        out["virtual_service_change"] = await change("VirtualService change", route, adsload.ROUTE)

        # Full push: a new service changes every proxy's clusters, routes and endpoints.
        index = proxies  # a fresh name per proxy count
        entry = new_service_entry(index)
        new_cluster = f"outbound|{synthetic.SERVICE_PORT}||{entry.spec.hosts[0]}"
        clients.names[adsload.ENDPOINT] = sorted([*base_eds, new_cluster])
        with pilot_cpu(plane, out, "full_push"):
            await client.create(entry)
            acked = clients.mark()

            def complete(s: adsload.Stream) -> bool:
                cds = s.first_since(acked, adsload.CLUSTER)
                return (
                    cds is not None
                    and s.received_since(acked, adsload.ROUTE)
                    and any(r.at >= cds.at and r.type_url == adsload.ENDPOINT for r in s.log)
                )

            await clients.wait(complete, timeout=args.timeout)
            done = [max(r.at for r in s.log if r.at >= acked) - acked for s in clients.streams]
        out["full_push"]["to_each_proxy"] = summary(done)
        out["full_push"]["seconds_to_all"] = round(max(done), 2)
        print(f"  full push: {out['full_push']}", flush=True)
        out["memory_after"] = plane.pilot_memory()
        out["stream_errors"] = clients.errors()
        out["checked_samples"] = check_samples(clients, new_cluster)
    return out


def check_samples(clients: adsload.ClientSet, new_cluster: str) -> dict[str, Any]:
    """Decode the responses a few streams kept: the last CDS and the last EDS hold the new
    service's cluster (else the benchmark measured the wrong thing: it raises)."""
    checked = 0
    for stream in clients.streams:
        if not stream.samples:
            continue
        last: dict[str, discovery_pb2.DiscoveryResponse] = {}
        for data in stream.samples:
            response = discovery_pb2.DiscoveryResponse.FromString(data)
            last[response.type_url] = response
        clusters = eds_names(last[adsload.CLUSTER].SerializeToString())
        if new_cluster not in clusters:
            raise AssertionError(f"stream {stream.index}: last CDS lacks {new_cluster}")
        assignments = [r.value for r in last[adsload.ENDPOINT].resources]
        if not any(new_cluster.encode() in value for value in assignments):
            raise AssertionError(f"stream {stream.index}: last EDS lacks {new_cluster}")
        checked += 1
    return {"streams_checked": checked}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    resources = synthetic.resources(args.services)
    results: dict[str, Any] = {}
    for proxies in args.proxies:
        plane = ControlPlane(
            f"{args.subnet}.100", args.pilot_tree, args.pilot_log_level, args.pilot_profile
        )
        failed = True
        try:
            await plane.start()
            loaded_in = await load_store(plane.store_url, resources)
            await wait_pilot_has(plane.pilot_url, len(resources), timeout=300, poll=3.0)
            entry: dict[str, Any] = {
                "store_load_s": round(loaded_in, 1),
                "memory_loaded": plane.pilot_memory(),
            }
            print(f"{args.services} services in the store ({loaded_in:.1f} s)", flush=True)
            entry.update(await measure(plane, args.services, proxies, args))
            results[str(proxies)] = entry
            failed = False
        except (asyncio.CancelledError, KeyboardInterrupt):
            failed = False
            raise
        finally:
            plane.stop(keep_logs=failed or args.keep)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--proxies", type=int, nargs="+", default=[100, 2000])
    parser.add_argument("--changes", type=int, default=5, help="changes of each kind")
    parser.add_argument("--wave", type=int, default=200, help="streams connected at a time")
    parser.add_argument("--streams-per-channel", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per wait")
    parser.add_argument("--settle", type=float, default=1.0, help="quiet seconds between steps")
    parser.add_argument("--subnet", default="127.0.16", help="loopback /24 of the control plane")
    parser.add_argument("--pilot-tree", type=pathlib.Path, default=ROOT, help="Pilot's source tree")
    parser.add_argument("--label", default="", help="results go to pilot_scale[-LABEL].json")
    parser.add_argument("--pilot-log-level", default="warning")
    parser.add_argument(
        "--pilot-profile", type=pathlib.Path, help="run Pilot under cProfile, writing here"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = asyncio.run(run(args))
    name = f"{NAME}-{args.label}" if args.label else NAME
    config = {
        "services": args.services,
        "proxies": args.proxies,
        "changes": args.changes,
        "wave": args.wave,
        "pilot_tree": str(args.pilot_tree),
    }
    path = report.write_result(name, {"config": config, "results": figures})
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(benchmesh.interruptible(main))
