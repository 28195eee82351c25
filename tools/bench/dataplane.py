"""Benchmark: the data plane at a fixed 1000 requests/s, Envoy alone against our sidecars and Mixer.

Every path in one run, the same backend (Bookinfo's details app, Python) and the same load
generator (hey, 20 workers at 50 req/s each, a fixed total rate), 10 s measured after 3 s of
warm-up per path:

- direct:        hey -> details app;
- floor:         hey -> stock Envoy -> stock Envoy -> details app: two Envoys started here on a
                 minimal static config (HTTP connection manager, router, one cluster each),
                 what Envoy itself costs on this machine;
- floor_mtls:    the same two Envoys with their hop over mutual TLS, as the sidecars' is
                 (floortls.py): what Envoy with TLS costs;
- sidecars:      hey -> productpage's sidecar (its HTTP proxy port) -> details' sidecar ->
                 details app: our two sidecars as Pilot configures them, no Mixer in the mesh,
                 with Istio's default profile (no access log, 1 % of requests traced);
- sidecars_demo: the same with Istio's demo profile, as `make bookinfo` runs (every request
                 logged and traced);
- mixer_nocache: the sidecars (default profile) with the Mixer filter in both and its check
                 cache off: every request's Check goes to mixs (Pilot
                 --disable-mixer-check-cache);
- mixer:         the same with the check cache on and warm (as deployed).

Between paths Pilot restarts with the next mesh config and the proxies take its push. For
each path: latency percentiles (hey's per-request times), each Envoy's CPU, mixs' CPU and the
details app's, as CPU seconds per second from /proc, scaled to 1000 req/s. Then Bookinfo's own
traffic (product pages through the gateway) gives the check cache hit ratio, summed over every
proxy's filter statistics.

    PYTHONPATH=. .venv/bin/python tools/bench/dataplane.py [--rate 1000] [--duration 10]
    bazel run //tools/bench:dataplane
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from pkg.testing.envoy import EnvoyProcess
from tools.bench import benchmesh, floortls, procmem, report, stats
from tools.local import launcher
from tools.local.mesh import Mesh

NAME = "dataplane"
# What the sidecars, and the Mixer paths after them, run with: Istio's default profile (no
# access log, 1 % of requests traced). The demo profile (`make bookinfo`'s: every request
# logged and traced) is measured once more on its own, to show what those two cost.
DEFAULT_PROFILE: dict[str, Any] = {"access_log_file": "", "trace_sampling": 1.0}
DEMO_PROFILE: dict[str, Any] = {"access_log_file": "/dev/stdout", "trace_sampling": 100.0}
ACCESS_LOGGER = "envoy.access_loggers.file"
WORKERS = 20
FLOOR_PORTS = (10080, 10081)


@dataclasses.dataclass(frozen=True)
class Path:
    name: str
    url: str
    proxy: str = ""  # hey -x
    envoys: tuple[str, ...] = ()  # the processes to charge Envoy CPU to, by role


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / clock_ticks()


def hey(path: Path, rate: float, duration: float) -> tuple[list[float], dict[int, int], float]:
    """Runs hey at `rate` for `duration` s; per-request latencies (s), status counts, wall s."""
    per_worker = rate / WORKERS
    argv = ["hey", "-z", f"{duration}s", "-c", str(WORKERS), "-q", f"{per_worker:g}", "-o", "csv"]
    if path.proxy:
        argv += ["-x", path.proxy]
    argv.append(path.url)
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True)
    wall = time.monotonic() - started
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    for line in done.stdout.splitlines()[1:]:
        parts = line.split(",")
        if len(parts) < 7:
            continue
        latencies.append(float(parts[0]))
        status = int(parts[6])
        statuses[status] = statuses.get(status, 0) + 1
    return latencies, statuses, wall


def measure(path: Path, pids: dict[str, int], args: argparse.Namespace) -> dict[str, Any]:
    hey(path, args.rate, args.warm_up)
    before = {role: cpu_seconds(pid) for role, pid in pids.items()}
    started = time.monotonic()
    latencies, statuses, _ = hey(path, args.rate, args.duration)
    elapsed = time.monotonic() - started
    after = {role: cpu_seconds(pid) for role, pid in pids.items()}
    achieved = len(latencies) / args.duration
    scale = 1000.0 / achieved if achieved else float("nan")
    cpu = {role: (after[role] - before[role]) / elapsed for role in pids}
    summary = stats.Summary.of_seconds(latencies)
    return {
        "url": path.url,
        "proxy": path.proxy,
        "requests": len(latencies),
        "achieved_rate": round(achieved, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency": summary.to_json() if latencies else None,
        "cpu_vcpu": {role: round(value, 4) for role, value in cpu.items()},
        "cpu_vcpu_per_1000_rps": {role: round(value * scale, 4) for role, value in cpu.items()},
        "envoys": list(path.envoys),
    }


# The floor: two Envoys on a minimal static config.


def floor_bootstrap(
    ip: str,
    port: int,
    upstream: tuple[str, int],
    admin_port: int,
    *,
    listener_tls: dict[str, Any] | None = None,
    cluster_tls: dict[str, Any] | None = None,
) -> dict:
    host, upstream_port = upstream
    bootstrap: dict[str, Any] = {
        "admin": {"address": {"socket_address": {"address": ip, "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "floor",
                    "address": {"socket_address": {"address": ip, "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "floor",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "route": {"cluster": "next"},
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "next",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "next",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": host,
                                                    "port_value": upstream_port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        },
    }
    if listener_tls is not None:
        bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = (
            listener_tls
        )
    if cluster_tls is not None:
        bootstrap["static_resources"]["clusters"][0]["transport_socket"] = cluster_tls
    return bootstrap


def measure_floor(
    name: str,
    args: argparse.Namespace,
    details: str,
    app: int,
    material: floortls.Material | None = None,
) -> dict[str, Any]:
    """Two stock Envoys in front of the details app; their hop over mutual TLS with `material`."""
    floor_ip = f"{args.subnet}.201"
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-floor-"))
    first = EnvoyProcess(
        floor_bootstrap(
            floor_ip,
            FLOOR_PORTS[0],
            (floor_ip, FLOOR_PORTS[1]),
            10090,
            cluster_tls=floortls.upstream_socket(material) if material else None,
        ),
        workdir / "a",
        log_level="warning",
    )
    second = EnvoyProcess(
        floor_bootstrap(
            floor_ip,
            FLOOR_PORTS[1],
            (details, 9080),
            10091,
            listener_tls=floortls.downstream_socket(material) if material else None,
        ),
        workdir / "b",
        log_level="warning",
    )
    try:
        first.start()
        second.start()
        asyncio.run(first.wait_live())
        asyncio.run(second.wait_live())
        return measure(
            Path(
                name,
                f"http://{floor_ip}:{FLOOR_PORTS[0]}/details/0",
                envoys=("client_envoy", "server_envoy"),
            ),
            {"client_envoy": first.pid, "server_envoy": second.pid, "app": app},
            args,
        )
    finally:
        first.stop()
        second.stop()


# The mesh, reconfigured between paths.


def restart_pilot(bench: benchmesh.BenchMesh, **changes: Any) -> Mesh:
    """Pilot again with a changed topology (its mesh config, its flags); proxies reconnect."""
    topology = dataclasses.replace(bench.topology, **changes)
    mesh = Mesh(topology, ready_timeout=90)
    (pilot,) = [s for s in launcher.read_state(topology.run_dir) if s.name == "pilot-discovery"]
    os.killpg(pilot.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pilot.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    topology.mesh_config_path.write_text(topology.mesh_config())
    asyncio.run(mesh.restart("pilot-discovery"))
    return mesh


def wait_listeners(
    bench: benchmesh.BenchMesh, pods: list[str], wanted: Callable[[str], bool], what: str
) -> None:
    """Until each pod's Envoy runs listeners whose config dump is `wanted`."""
    deadline = time.monotonic() + 60
    for pod in pods:
        while True:
            try:
                dump = (
                    urllib.request.urlopen(
                        f"http://{bench.ip(pod)}:15000/config_dump?resource=dynamic_listeners",
                        timeout=5,
                    )
                    .read()
                    .decode()
                )
            except OSError:
                dump = ""  # a busy machine can keep the admin port from answering in time
            if dump and wanted(dump):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pod}: its listeners never had {what}")
            time.sleep(0.2)


def wait_filters(
    bench: benchmesh.BenchMesh, pods: list[str], present: bool, marker: str = ""
) -> None:
    """Until each pod's Envoy runs (or no longer runs) the Mixer filter (with `marker` text)."""
    wait_listeners(
        bench,
        pods,
        lambda dump: ("mixer_filter.wasm" in dump and marker in dump) == present,
        f"the Mixer filter {'on' if present else 'off'} {marker}",
    )


def filter_stats(bench: benchmesh.BenchMesh) -> dict[str, int]:
    """Every proxy's Mixer filter counters, summed by name."""
    totals: dict[str, int] = {}
    addresses = [bench.ip(p.name) for p in bench.topology.pods] + [bench.topology.gateway_address]
    for address in addresses:
        text = (
            urllib.request.urlopen(
                f"http://{address}:15000/stats?filter=wasmcustom.http_mixer_filter", timeout=5
            )
            .read()
            .decode()
        )
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                key = name.split(".", 3)[-1]  # drop wasmcustom.http_mixer_filter.<direction>
                totals[key] = totals.get(key, 0) + int(value)
    return totals


def bookinfo_hit_ratio(bench: benchmesh.BenchMesh, seconds: float, rate: float) -> dict[str, Any]:
    """Product pages through the gateway for `seconds`: the share of Checks the caches answered."""
    time.sleep(1.0)
    before = filter_stats(bench)
    path = Path("bookinfo", bench.topology.productpage_url)
    _, statuses, _ = hey(path, rate, seconds)
    time.sleep(1.0)  # counters are exported on the filters' tick
    after = filter_stats(bench)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    calls = delta.get("total_check_calls", 0)
    hits = delta.get("total_check_cache_hits", 0)
    return {
        "pages_per_s": rate,
        "seconds": seconds,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "checks": calls,
        "check_cache_hits": hits,
        "remote_checks": delta.get("total_remote_check_calls", 0),
        "hit_ratio": round(hits / calls, 4) if calls else None,
        "reports": delta.get("total_report_calls", 0),
        "report_batches_sent": delta.get("total_remote_report_calls", 0),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    rounds: list[dict[str, Any]] = []
    with benchmesh.running_mesh(NAME, args.subnet, mixer=False, **DEFAULT_PROFILE) as bench:
        material = floortls.write_material(bench.topology.run_dir / "floor-tls")
        for number in range(args.rounds):
            if args.rounds > 1:
                print(f"round {number + 1} of {args.rounds}", flush=True)
            if number:
                restart_pilot(bench)  # the mesh as it started: no Mixer, default profile
            rounds.append(one_round(bench, args, material))
        check_cache = bookinfo_hit_ratio(bench, args.pages_seconds, args.pages_rate)
        print(f"bookinfo check cache: {json.dumps(check_cache)}", flush=True)
    result: dict[str, Any] = {
        "config": {
            "rate": args.rate,
            "duration_s": args.duration,
            "warm_up_s": args.warm_up,
            "rounds": args.rounds,
            "generator": f"hey, {WORKERS} workers at {args.rate / WORKERS:g} req/s each",
            "backend": "Bookinfo details (Python)",
        },
        # The last round's paths and figures; every round's, and each figure's median over
        # them, when there are several.
        "paths": {**rounds[-1], "bookinfo_check_cache": check_cache},
        "figures": figures(rounds[-1]),
    }
    if args.rounds > 1:
        result["rounds"] = [{"paths": r, "figures": figures(r)} for r in rounds]
        result["median_figures"] = median_figures([figures(r) for r in rounds])
    return result


def one_round(
    bench: benchmesh.BenchMesh, args: argparse.Namespace, material: floortls.Material
) -> dict[str, Any]:
    """Every path once, in order; Pilot restarted between the mesh's paths."""
    results: dict[str, Any] = {}
    details = bench.ip("details-v1")
    app = bench.process("details-v1").pid
    mixs = bench.process("mixs").pid

    def sidecar_pids() -> dict[str, int]:
        pids = {
            "client_envoy": procmem.envoy_of(
                bench.process("productpage-v1-proxy").pid,
                bench.bootstrap_path("productpage-v1"),
            ),
            "server_envoy": procmem.envoy_of(
                bench.process("details-v1-proxy").pid, bench.bootstrap_path("details-v1")
            ),
            "mixs": mixs,
            "app": app,
        }
        missing = [role for role, pid in pids.items() if pid is None]
        if missing:
            raise RuntimeError(f"no process for {missing}")
        return pids  # type: ignore[return-value]

    results["direct"] = measure(
        Path("direct", f"http://{details}:9080/details/0"), {"app": app}, args
    )
    _print("direct", results["direct"])

    results["floor"] = measure_floor("floor", args, details, app)
    _print("floor", results["floor"])
    results["floor_mtls"] = measure_floor("floor_mtls", args, details, app, material)
    _print("floor_mtls", results["floor_mtls"])

    sidecar_path = Path(
        "sidecars",
        "http://details:9080/details/0",
        proxy=f"http://{bench.ip('productpage-v1')}:15001",
        envoys=("client_envoy", "server_envoy"),
    )
    pods = ["productpage-v1", "details-v1"]
    wait_filters(bench, pods, present=False)
    wait_listeners(bench, pods, lambda dump: ACCESS_LOGGER not in dump, "no access log")
    results["sidecars"] = measure(sidecar_path, sidecar_pids(), args)
    _print("sidecars", results["sidecars"])

    restart_pilot(bench, **DEMO_PROFILE)
    wait_listeners(bench, pods, lambda dump: ACCESS_LOGGER in dump, "the access log")
    results["sidecars_demo"] = measure(sidecar_path, sidecar_pids(), args)
    _print("sidecars_demo", results["sidecars_demo"])

    restart_pilot(bench, mixer=True, mixer_check_cache=False)
    wait_filters(bench, pods, present=True, marker="disableCheckCache")
    results["mixer_nocache"] = measure(sidecar_path, sidecar_pids(), args)
    _print("mixer_nocache", results["mixer_nocache"])

    restart_pilot(bench, mixer=True, mixer_check_cache=True)
    wait_filters(bench, pods, present=True)
    results["mixer"] = measure(sidecar_path, sidecar_pids(), args)
    _print("mixer", results["mixer"])
    return results


def median_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric figure's median over the rounds, the rounds' values beside it."""
    out: dict[str, Any] = {}
    for key, first in rounds[0].items():
        if isinstance(first, dict):
            out[key] = median_figures([r[key] for r in rounds])
        elif isinstance(first, int | float) and not isinstance(first, bool):
            values = [r[key] for r in rounds]
            out[key] = {"median": round(statistics.median(values), 4), "rounds": values}
        else:
            out[key] = first
    return out


def _p(result: dict[str, Any], q: str) -> float:
    return result["latency"][f"{q}_ms"]


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """Added latency and CPU, and the ratios the targets are stated in."""
    direct = results["direct"]
    out: dict[str, Any] = {}

    def envoy_cpu(result: dict[str, Any]) -> float:
        return sum(result["cpu_vcpu_per_1000_rps"][role] for role in result["envoys"])

    for name in ("floor", "floor_mtls", "sidecars", "sidecars_demo", "mixer_nocache", "mixer"):
        result = results[name]
        out[name] = {
            f"added_{q}_ms": round(_p(result, q) - _p(direct, q), 3) for q in ("p50", "p90", "p99")
        }
        out[name]["envoys_vcpu_per_1000_rps"] = round(envoy_cpu(result), 4)
        out[name]["per_envoy_vcpu_per_1000_rps"] = {
            role: result["cpu_vcpu_per_1000_rps"][role] for role in result["envoys"]
        }
    floor_added = out["floor"]["added_p90_ms"]
    sidecars = out["sidecars"]
    out["sidecars_vs_floor"] = {
        "added_p50_ratio": round(sidecars["added_p50_ms"] / out["floor"]["added_p50_ms"], 3),
        "added_p90_ratio": round(sidecars["added_p90_ms"] / floor_added, 3),
        "cpu_ratio": round(
            sidecars["envoys_vcpu_per_1000_rps"] / out["floor"]["envoys_vcpu_per_1000_rps"], 3
        ),
        "targets": "added latency <= 1.05x, CPU <= 1.1x",
    }
    # What is left above the floor once the floor pays for mutual TLS as the sidecars do.
    mtls = out["floor_mtls"]
    out["sidecars_vs_floor_mtls"] = {
        "added_p50_ratio": round(sidecars["added_p50_ms"] / mtls["added_p50_ms"], 3),
        "added_p90_ratio": round(sidecars["added_p90_ms"] / mtls["added_p90_ms"], 3),
        "cpu_ratio": round(
            sidecars["envoys_vcpu_per_1000_rps"] / mtls["envoys_vcpu_per_1000_rps"], 3
        ),
    }
    demo = out["sidecars_demo"]
    out["sidecars_demo_vs_floor"] = {
        "added_p50_ratio": round(demo["added_p50_ms"] / out["floor"]["added_p50_ms"], 3),
        "added_p90_ratio": round(demo["added_p90_ms"] / floor_added, 3),
        "cpu_ratio": round(
            demo["envoys_vcpu_per_1000_rps"] / out["floor"]["envoys_vcpu_per_1000_rps"], 3
        ),
    }
    for name in ("mixer", "mixer_nocache"):
        result = results[name]
        added_p90 = _p(result, "p90") - _p(results["sidecars"], "p90")
        filter_cpu = out[name]["envoys_vcpu_per_1000_rps"] - sidecars["envoys_vcpu_per_1000_rps"]
        mixs_cpu = result["cpu_vcpu_per_1000_rps"]["mixs"]
        out[f"{name}_vs_sidecars"] = {
            "added_p90_ms": round(added_p90, 3),
            "added_p90_share_of_floor_added": round(added_p90 / floor_added, 3),
            "filters_vcpu_per_1000_rps": round(filter_cpu, 4),
            "filter_cpu_us_per_request_per_sidecar": round(filter_cpu * 1000 / 2, 1),
            "mixs_vcpu_per_1000_rps": round(mixs_cpu, 4),
            "total_vcpu_per_1000_rps": round(filter_cpu + mixs_cpu, 4),
            "targets": "added p90 <= 0.25x the floor's added p90; filters + mixs <= 0.2 vCPU",
        }
    return out


def _print(name: str, result: dict[str, Any]) -> None:
    latency = result["latency"] or {}
    cpu = ", ".join(f"{k} {v:.3f}" for k, v in result["cpu_vcpu_per_1000_rps"].items())
    print(
        f"{name:14} p50 {latency.get('p50_ms', 0):6.2f}  p90 {latency.get('p90_ms', 0):6.2f}  "
        f"p99 {latency.get('p99_ms', 0):6.2f} ms at {result['achieved_rate']}/s "
        f"{result['statuses']}; vCPU per 1000 req/s: {cpu}",
        flush=True,
    )


def print_figures(result: dict[str, Any]) -> None:
    rows = []
    for name, data in result["paths"].items():
        if "latency" not in data or not data["latency"]:
            continue
        cpu = data["cpu_vcpu_per_1000_rps"]
        rows.append(
            [
                name,
                data["latency"]["p50_ms"],
                data["latency"]["p90_ms"],
                data["latency"]["p99_ms"],
                data["achieved_rate"],
                cpu.get("client_envoy", "-"),
                cpu.get("server_envoy", "-"),
                cpu.get("mixs", "-"),
                cpu.get("app", "-"),
            ]
        )
    headers = ["path", "p50 ms", "p90 ms", "p99 ms", "req/s", "envoy 1", "envoy 2", "mixs", "app"]
    rounds = result["config"]["rounds"]
    last = f" (the last of {rounds} rounds)" if rounds > 1 else ""
    print(f"at {result['config']['rate']} req/s{last}, vCPU per 1000 req/s:")
    print(report.table(headers, rows))
    print(json.dumps(result["figures"], indent=1))
    if "median_figures" in result:
        medians = result["median_figures"]
        print(f"the ratios' medians over {rounds} rounds (each round's value in brackets):")
        for group in ("sidecars_vs_floor", "sidecars_vs_floor_mtls", "mixer_vs_sidecars"):
            for key, value in medians[group].items():
                if isinstance(value, dict):
                    print(f"  {group}.{key}: {value['median']} {value['rounds']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="requests a second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per path")
    parser.add_argument("--warm-up", type=float, default=3.0, help="seconds sent, not measured")
    parser.add_argument("--pages-rate", type=float, default=20.0, help="product pages a second")
    parser.add_argument("--pages-seconds", type=float, default=10.0)
    parser.add_argument("--subnet", default="127.0.12", help="loopback /24 for the mesh")
    parser.add_argument(
        "--rounds", type=int, default=1, help="every path this many times, medians reported"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print_figures(result)
    print(f"written to {report.write_result(NAME, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(benchmesh.interruptible(main))
