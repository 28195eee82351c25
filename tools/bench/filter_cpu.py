"""Benchmark: what the Mixer filter costs one Envoy per request, apart from everything else.

One real Envoy (concurrency 1) answers every request itself (direct_response, no upstream);
hey sends a fixed 1000 req/s for 10 s (after 3 s of warm-up) with the Bookinfo-like headers
of a request between sidecars. Envoy's CPU (utime + stime from /proc) per request, for:

- no_filter:   the HTTP connection manager and the router only;
- noop_native: a native dynamic module (dynamic_module_noop.cc) whose hooks return at once:
               what Envoy's other extension mechanism costs, to choose between the two;
- noop_wasm:   a wasm filter (our module, root_id "noop") whose callbacks return at once;
- idle_filter: the Mixer wasm filter with checks and reports off (the VM, the callbacks, the
               request headers read once): the price of being there;
- report:      reports on (an outbound sidecar's config);
- check_report: checks (answered by the check cache once warm) and reports (an inbound
               sidecar's config);
- nocache:     checks with the check cache off, and reports.

Mixer is a null Mixer (tools/bench/null_mixer.py: answers at once, its CPU not counted), so
the figures are the filter's own. The difference to no_filter is the filter's CPU per request.

With `--wasm LABEL=PATH` (repeatable) every wasm case runs once per module, back to back
(before and after a change, in the same run and under the same load): the results then
hold, for each wasm case, one entry per label. `--cases` keeps only the named cases;
`--repeat N` runs the whole comparison N times (the noise).

    PYTHONPATH=. .venv/bin/python tools/bench/filter_cpu.py
    PYTHONPATH=. .venv/bin/python tools/bench/filter_cpu.py \
        --wasm before=/tmp/old/mixer_filter.wasm --wasm after=bazel-bin/proxy/extensions/mixer/mixer_filter.wasm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
from typing import Any

from pkg.testing.envoy import EnvoyProcess
from proxy.extensions.mixer import module
from tools.bench import report
from tools.bench.dataplane import Path, cpu_seconds, hey
from tools.bench.runfolder import run_folder

NAME = "filter_cpu"
MIXER_CLUSTER = "outbound|9091||mixs"


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if isinstance(value, dict):
            out[name] = {"stringMapValue": {"entries": value}}
        else:
            out[name] = {"stringValue": value}
    return {"attributes": out}


def filter_config(*, check: bool, report_calls: bool, cache: bool = True) -> dict[str, Any]:
    """An inbound sidecar's filter config, as Pilot writes it for details-v1."""
    return {
        "transport": {
            "checkCluster": MIXER_CLUSTER,
            "reportCluster": MIXER_CLUSTER,
            "networkFailPolicy": {"policy": "FAIL_CLOSE"},
            "disableCheckCache": not cache,
        },
        "defaultDestinationService": "inbound|9080||",
        "serviceConfigs": {
            "inbound|9080||": {
                "disableCheckCalls": not check,
                "disableReportCalls": not report_calls,
                "mixerAttributes": _attributes(
                    {
                        "destination.service.host": "details.default.svc.cluster.local",
                        "destination.service.name": "details",
                        "destination.service.namespace": "default",
                        "destination.service.uid": "istio://default/services/details",
                    }
                ),
            }
        },
        "mixerAttributes": _attributes(
            {
                "destination.uid": "kubernetes://details-v1.default",
                "destination.namespace": "default",
                "destination.name": "details-v1",
                "destination.labels": {"app": "details", "version": "v1"},
                "destination.workload.name": "details-v1",
                "destination.workload.namespace": "default",
                "context.reporter.uid": "kubernetes://details-v1.default",
                "context.reporter.kind": "inbound",
            }
        ),
    }


def bootstrap(
    ip: str,
    port: int,
    mixer_port: int,
    config: dict[str, Any] | None,
    wasm: pathlib.Path | None = None,
) -> dict:
    filters = []
    root_id = "mixer"
    if config is not None and config.get("native"):
        filters.append(
            {
                "name": "noop",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                    "dynamic_module_config": {"name": "mixer_noop"},
                    "filter_name": "noop",
                },
            }
        )
        config = None
    if config is not None and config.get("noop"):
        root_id, config = "noop", {}
    if config is not None:
        filters.append(
            {
                "name": "mixer",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "mixer",
                        "root_id": root_id,
                        "vm_config": {
                            "vm_id": "mixer",
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": {"local": {"filename": str(wasm or module.module_path())}},
                        },
                        "configuration": {
                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": json.dumps(config),
                        },
                    },
                },
            }
        )
    filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            },
        }
    )
    route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "x" * 178}},
    }
    return {
        "admin": {"address": {"socket_address": {"address": ip, "port_value": 0}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "in",
                    "address": {"socket_address": {"address": ip, "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "in",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {"name": "all", "domains": ["*"], "routes": [route]}
                                            ]
                                        },
                                        "http_filters": filters,
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": MIXER_CLUSTER,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                    "load_assignment": {
                        "cluster_name": MIXER_CLUSTER,
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": "127.0.0.1",
                                                    "port_value": mixer_port,
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


CASES: dict[str, dict[str, Any] | None] = {
    "no_filter": None,
    "noop_native": {"native": True},
    "noop_wasm": {"noop": True},
    "idle_filter": filter_config(check=False, report_calls=False),
    "report": filter_config(check=False, report_calls=True),
    "check_report": filter_config(check=True, report_calls=True),
    "nocache": filter_config(check=True, report_calls=True, cache=False),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_wasm(config: dict[str, Any] | None) -> bool:
    return config is not None and not config.get("native")


def modules(args: argparse.Namespace) -> dict[str, pathlib.Path | None]:
    """Label -> module path; one unlabelled entry (the built module) without --wasm."""
    out: dict[str, pathlib.Path | None] = {}
    for item in args.wasm:
        label, sep, path = item.partition("=")
        if not sep or not label or not pathlib.Path(path).is_file():
            raise SystemExit(f"--wasm {item!r}: want LABEL=PATH of an existing module")
        out[label] = pathlib.Path(path).resolve()
    return out or {"": None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    labels = modules(args)
    cases = {name: c for name, c in CASES.items() if not args.cases or name in args.cases}
    if "no_filter" not in cases:
        raise SystemExit("--cases must include no_filter (the base of every difference)")
    mixer_port = free_port()
    mixer = subprocess.Popen(
        [sys.executable, "-m", "tools.bench.null_mixer", "--address", f"127.0.0.1:{mixer_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rounds: list[dict[str, Any]] = []
    with run_folder("filter-cpu") as workdir:
        source = pathlib.Path(__file__).with_name("dynamic_module_noop.cc")
        subprocess.run(
            [
                "clang++",
                "-shared",
                "-fPIC",
                "-O2",
                "-o",
                str(workdir / "libmixer_noop.so"),
                str(source),
            ],
            check=True,
        )
        # Where Envoy looks for dynamic modules (lib<name>.so); Envoy inherits it.
        os.environ["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = str(workdir)
        try:
            time.sleep(1.0)
            for round_number in range(args.repeat):
                results: dict[str, Any] = {}
                for name, config in cases.items():
                    for label, wasm in labels.items() if is_wasm(config) else [("", None)]:
                        result = measure(
                            args,
                            workdir / f"{round_number}-{name}-{label}",
                            mixer_port,
                            config,
                            wasm,
                        )
                        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
                        if label:
                            results.setdefault(name, {})[label] = result
                        else:
                            results[name] = result
                        print(f"{name:13} {label:8} {result}", flush=True)
                rounds.append(with_differences(results))
        finally:
            mixer.terminate()
            mixer.wait(10)
    out: dict[str, Any] = {
        "config": {"rate": args.rate, "duration_s": args.duration, "repeat": args.repeat},
        "cases": rounds[0],
    }
    if args.wasm:
        out["modules"] = {label: str(path) for label, path in labels.items()}
    if len(rounds) > 1:
        out["rounds"] = rounds
    return out


def measure(
    args: argparse.Namespace,
    folder: pathlib.Path,
    mixer_port: int,
    config: dict[str, Any] | None,
    wasm: pathlib.Path | None,
) -> dict[str, Any]:
    """One Envoy with one filter config: warm up, then its CPU per request at the rate."""
    envoy = EnvoyProcess(
        bootstrap(args.ip, args.port, mixer_port, config, wasm), folder, log_level="warning"
    )
    envoy.start()
    try:
        asyncio.run(envoy.wait_live())
        path = Path(folder.name, f"http://{args.ip}:{args.port}/details/0")
        hey(path, args.rate, args.warm_up)
        before = cpu_seconds(envoy.pid)
        latencies, statuses, _ = hey(path, args.rate, args.duration)
        used = cpu_seconds(envoy.pid) - before
    finally:
        envoy.stop()
    return {
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in statuses.items()},
        "envoy_cpu_us_per_request": round(used / max(1, len(latencies)) * 1e6, 1),
    }


def with_differences(results: dict[str, Any]) -> dict[str, Any]:
    """Adds filter_us_per_request (the difference to no_filter) to every result."""
    base = results["no_filter"]["envoy_cpu_us_per_request"]
    for result in results.values():
        for one in result.values() if "requests" not in result else [result]:
            one["filter_us_per_request"] = round(one["envoy_cpu_us_per_request"] - base, 1)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warm-up", type=float, default=3.0)
    parser.add_argument("--ip", default="127.0.13.1")
    parser.add_argument("--port", type=int, default=10100)
    parser.add_argument(
        "--wasm",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="run every wasm case with this module too, under this label (repeatable)",
    )
    parser.add_argument("--cases", nargs="*", choices=list(CASES), help="only these cases")
    parser.add_argument("--repeat", type=int, default=1, help="run the comparison N times")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    for number, cases in enumerate(result.get("rounds", [result["cases"]]), 1):
        rows = []
        for name, r in cases.items():
            for label, one in r.items() if "requests" not in r else [("", r)]:
                rows.append(
                    [
                        name,
                        label,
                        one["envoy_cpu_us_per_request"],
                        one["filter_us_per_request"],
                        one["requests"],
                        one["load_average"][0],
                    ]
                )
        print(f"round {number}")
        header = ["case", "module", "Envoy CPU us/request", "filter us/request", "requests", "load"]
        print(report.table(header, rows))
    print(f"written to {report.write_result(NAME, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
