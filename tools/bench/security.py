"""Benchmark: what identity and mutual TLS cost, from the CA to a request's latency.

1. `ca` (`security_ca.py`): certificates a second one CA signs in this process
   (`CertificateAuthority.sign_workload`, alone and after the CSR checks), CA and workload
   keys ECDSA P-256 and RSA 2048; a client's key + CSR; then the real CA as its own process
   under N concurrent clients over gRPC+TLS, each issuance whole (key, CSR, new TLS
   channel, RPC: a workload start) or the RPC alone on a shared channel (the CA's
   ceiling), with the CA's and the clients' CPU.
2. `startup` (`security_startup.py`): in the Bookinfo mesh (127.0.11.x), a pod's agent and
   Envoy killed and started again; from the start to Envoy's admin answering, the node
   agent seeing the SDS watch, Envoy holding its SPIFFE certificate, the pod ready. Warm
   (the node agent holds the certificate) and cold (node agent restarted first: the start
   waits for the CA).
3. `handshake` (`security_handshake.py`): latency at a fixed rate through productpage's
   sidecar to details and straight to details' inbound listener, keep-alive and a new
   connection per request, with mutual TLS (auto mTLS, the default) and with plaintext
   (a PeerAuthentication DISABLE for details), Envoy's TLS handshake counters alongside.

    PYTHONPATH=. .venv/bin/python tools/bench/security.py [--part ca|startup|handshake]
    bazel run //tools/bench:security

This file is named as the issue asks, which makes it shadow the top-level `security`
package for a script in this folder: Python puts the script's folder first on sys.path.
So the folder leaves sys.path before anything imports `security.ca` (as security/ca/main.py
does), and the modules that do are imported inside `main`.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import time
from typing import Any

PARTS = ("ca", "startup", "handshake")
NAME = "security"


def _put_repo_root_on_path() -> None:
    here = pathlib.Path(__file__).absolute().parent
    # Python puts the folder of the script's real path first (bazel run's runfiles link
    # there), so both folders go.
    script_dirs = {here, here.resolve(), pathlib.Path(__file__).resolve().parent}
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").absolute() not in script_dirs]
    root = str(here.parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--part", action="append", choices=PARTS, dest="parts", help="run only this part"
    )
    parser.add_argument("--sign-seconds", type=float, default=1.0, help="per in-process figure")
    parser.add_argument("--load-seconds", type=float, default=3.0, help="per gRPC load run")
    parser.add_argument("--workers", type=int, default=8, help="concurrent CA clients")
    parser.add_argument("--pod", default="details-v1", help="the pod whose agent restarts")
    parser.add_argument("--restarts", type=int, default=5, help="warm restarts")
    parser.add_argument("--cold-restarts", type=int, default=3, help="after a node agent restart")
    parser.add_argument("--rate", type=float, default=100.0, help="requests a second")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds measured per path and round"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of mTLS then plaintext")
    parser.add_argument("--warm-up", type=float, default=1.0, help="seconds sent, not measured")
    parser.add_argument("--subnet", default="127.0.11", help="loopback /24 for the mesh")
    args = parser.parse_args(argv)
    args.partial = bool(args.parts)
    args.parts = args.parts or list(PARTS)
    return args


def main(argv: list[str] | None = None) -> int:
    from tools.bench import (
        benchmesh,
        report,
        security_ca,
        security_handshake,
        security_startup,
    )

    args = parse_args(argv)
    started = time.monotonic()
    result: dict[str, Any] = {}
    if "ca" in args.parts:
        result["ca"] = asyncio.run(
            security_ca.run(
                sign_seconds=args.sign_seconds,
                load_seconds=args.load_seconds,
                workers=args.workers,
            )
        )
    if {"startup", "handshake"} & set(args.parts):
        settings = security_handshake.Settings(
            rate=args.rate, duration=args.duration, warm_up=args.warm_up, rounds=args.rounds
        )

        async def mesh_parts(bench: benchmesh.BenchMesh) -> None:
            # The latency runs first: the restarts leave every pod up, but not untouched.
            if "handshake" in args.parts:
                result["handshake"] = await security_handshake.run(bench, settings)
            if "startup" in args.parts:
                result["startup"] = await security_startup.run(
                    bench, pod=args.pod, restarts=args.restarts, cold_restarts=args.cold_restarts
                )

        with benchmesh.running_mesh(NAME, args.subnet) as bench:
            asyncio.run(mesh_parts(bench))
    print(format_figures(result, report.table))
    print(f"\ntook {time.monotonic() - started:.0f} s")
    if args.partial:
        print("(--part: a partial run, results file left as it was)")
    else:
        print(f"written to {report.write_result(NAME, result)}")
    return 0 if errors(result) == 0 else 1


def format_figures(result: dict[str, Any], table: Any) -> str:
    """The figures as text tables (`table` is report.table)."""
    out: list[str] = []
    if "ca" in result:
        ca = result["ca"]
        out += ["", "CA, in process (one core):"]
        out.append(
            table(
                ["CA key", "workload key", "sign/s", "ms", "parse+sign/s", "ms"],
                [
                    [
                        r["ca_key"],
                        r["workload_key"],
                        *(
                            r[k][f]
                            for k in ("sign", "parse_and_sign")
                            for f in ("per_s", "ms_each")
                        ),
                    ]
                    for r in ca["signing_in_process"]
                ],
            )
        )
        out += ["", "CA over gRPC+TLS, its own process (full: key + CSR + new channel + RPC):"]
        out.append(table(_LOAD_HEADERS, [_load_row(r) for r in ca["over_grpc"]]))
    if "startup" in result:
        startup = result["startup"]
        out += ["", f"From the restart of {startup['pod']}'s agent to ... (ms):"]
        rows = [
            [kind, name, data["count"], data["p50_ms"], data["max_ms"]]
            for kind in ("warm", "cold")
            for name, data in startup.get(kind, {}).get("summary", {}).items()
        ]
        out.append(table(["node agent", "milestone", "n", "p50", "max"], rows))
    if "handshake" in result:
        handshake = result["handshake"]
        config = handshake["config"]
        out += [
            "",
            f"Latency (ms) at {config['rate']} req/s, {config['rounds']} rounds of "
            f"{config['duration']} s per path (TLS hs: handshakes; open: details' inbound "
            "connections open at the end of the last round, TLS/plaintext):",
        ]
        rows = [
            _latency_row(phase, name, data)
            for phase in ("mtls", "plaintext")
            for name, data in handshake.get(phase, {}).items()
        ]
        out.append(table(_LATENCY_HEADERS, rows))
    return "\n".join(out)


_LOAD_HEADERS = ["CA key", "mode", "key", "clients", "certs/s", "p50 ms", "p99 ms"]
_LOAD_HEADERS += ["CA CPU %", "CA ms/cert", "client CPU %", "errors"]
_LATENCY_HEADERS = ["details", "path", "p50", "p90", "p99", "max"]
_LATENCY_HEADERS += ["details TLS hs", "details conns", "client-sidecar TLS hs", "open"]
_LATENCY_HEADERS += ["Envoy CPU ms/req (pp/details)", "errors"]


def _load_row(r: dict[str, Any]) -> list[Any]:
    latency = r["latency"] or {}
    return [
        r["ca_key"],
        r["mode"],
        r["workload_key"],
        r["workers"],
        r["per_s"],
        latency.get("p50_ms", "-"),
        latency.get("p99_ms", "-"),
        r["ca_cpu_percent"],
        r["ca_cpu_ms_per_cert"] or "-",
        r["client_cpu_percent"],
        r["errors"],
    ]


def _latency_row(phase: str, name: str, data: dict[str, Any]) -> list[Any]:
    latency = data["latency"] or {}
    last = data["rounds"][-1] if data["rounds"] else None
    cpu = data.get("envoy_cpu_ms_per_request", {})
    return [
        phase,
        name,
        *(latency.get(f"{q}_ms", "-") for q in ("p50", "p90", "p99", "max")),
        data["details_sidecar"]["tls_handshakes"],
        data["details_sidecar"]["connections"],
        data["client_sidecar"]["tls_handshakes"],
        f"{last['details_open_tls']}/{last['details_open_plaintext']}" if last else "-",
        "/".join(f"{cpu.get(envoy, 0):.2f}" for envoy in ("productpage", "details")),
        data["errors"],
    ]


def errors(result: dict[str, Any]) -> int:
    """Failed issuances and failed requests over the whole run."""
    ca = sum(r["errors"] for r in result.get("ca", {}).get("over_grpc", []))
    handshake = result.get("handshake", {})
    requests = sum(
        d["errors"] for phase in ("mtls", "plaintext") for d in handshake.get(phase, {}).values()
    )
    return ca + requests


if __name__ == "__main__":
    _put_repo_root_on_path()
    from tools.bench import benchmesh

    sys.exit(benchmesh.interruptible(main))
