"""The CA's side of the security benchmark: how many workload certificates it signs a second.

- `signing_rate`: `CertificateAuthority.sign_workload` alone, in this process (the cost of
  building and signing one leaf), and with the CSR parsing and signature check the gRPC
  handler does first.
- `csr_rate`: what a client pays before it can ask: a fresh key and a CSR.
- `ca_process`: the real CA (`python -m security.ca.main`) as a separate process, so the
  clients' CPU is not the CA's; its CPU time is read from /proc.
- `issuance_load`: N concurrent clients calling CreateCertificate over TLS for a while,
  each issuance either whole (new key, CSR, new TLS channel, RPC: what a workload start
  costs, as the node agent opens a channel per CSR) or the RPC alone on a shared channel
  with CSRs made beforehand (what bounds the CA itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import yaml

from pkg.ca.client import CaClient, create_certificate
from pkg.ca.csr import csr_for, new_key
from security.ca import cadir
from security.ca.authority import CertificateAuthority, IssuePolicy
from security.ca.identity import SpiffeId
from security.ca.request import parse_csr
from tools.bench import security_parse
from tools.bench.stats import Summary, median
from tools.local.topology import ROOT, base_env

TRUST_DOMAIN = "cluster.local"
IDENTITY = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/bench"
TOKEN = "security-bench-token"
KEY_KINDS = ("ec", "rsa")
TTL_SECONDS = 3600


def _timed_loop(seconds: float, once: Callable[[], object]) -> tuple[int, float]:
    """Call `once` until `seconds` have passed; (calls, elapsed seconds)."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        once()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count, now - started


def rates(
    seconds: float, work: dict[str, Callable[[], object]], blocks: int = 5
) -> dict[str, dict[str, float]]:
    """Calls a second of each of `work`'s functions: `seconds` each, in `blocks` short blocks
    taken in turns, the median block reported. On a shared machine another process's burst
    then spoils a block or two of each, not a whole figure."""
    per_block: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(blocks):
        for name, once in work.items():
            count, elapsed = _timed_loop(seconds / blocks, once)
            per_block[name].append(count / elapsed)
    result: dict[str, dict[str, float]] = {}
    for name, values in per_block.items():
        rate = median(values)
        result[name] = {"per_s": round(rate, 1), "ms_each": round(1e3 / rate, 3)}
    return result


def signing_rate(ca_key: str, workload_key: str, seconds: float) -> dict[str, Any]:
    """Certificates a second one CA signs in this process: sign_workload alone, and with
    parse_csr (PEM decode, CSR signature check, SAN check) before it."""
    with tempfile.TemporaryDirectory(prefix="bench-ca-") as ca_dir:
        bundle = cadir.load_or_create(
            pathlib.Path(ca_dir), cadir.RootOptions(trust_domain=TRUST_DOMAIN, key_type=ca_key)
        )
    authority = CertificateAuthority(bundle, IssuePolicy(trust_domain=TRUST_DOMAIN))
    key = new_key(workload_key)
    csr_pem = csr_for(key, IDENTITY)
    identities = [SpiffeId.parse(IDENTITY)]
    public_key = key.public_key()

    def sign() -> None:
        authority.sign_workload(public_key, identities, TTL_SECONDS)

    def parse_and_sign() -> None:
        request = parse_csr(csr_pem, TRUST_DOMAIN)
        authority.sign_workload(request.public_key, request.identities, TTL_SECONDS)

    sign()  # first-call costs (imports, caches) are not the steady state
    return {
        "ca_key": ca_key,
        "workload_key": workload_key,
        **rates(seconds, {"sign": sign, "parse_and_sign": parse_and_sign}),
    }


def csr_rate(key_kind: str, seconds: float) -> dict[str, Any]:
    """Fresh keys and CSRs a second, one thread: the client's work before each request."""
    return {
        "workload_key": key_kind,
        **rates(seconds, {"csr": lambda: csr_for(new_key(key_kind), IDENTITY)})["csr"],
    }


@dataclasses.dataclass(frozen=True)
class CaProcess:
    pid: int
    address: str  # TLS gRPC, bearer token TOKEN
    root_pem: bytes
    log: pathlib.Path

    def cpu_seconds(self) -> float:
        return security_parse.process_cpu_seconds(self.pid)


@contextlib.asynccontextmanager
async def ca_process(
    work_dir: pathlib.Path, *, key_type: str = "ec", timeout: float = 30.0
) -> AsyncIterator[CaProcess]:
    """The CA as its own process on 127.0.0.1 ephemeral ports (read back from its log),
    stopped (SIGTERM, then SIGKILL) on the way out."""
    log = work_dir / "istio-ca.log"
    process = await asyncio.to_thread(_start_ca, work_dir, key_type, log)
    try:
        addresses = await _wait_ready(process, log, timeout)
        root = await asyncio.to_thread((work_dir / "ca" / cadir.ROOT_CERT).read_bytes)
        yield CaProcess(pid=process.pid, address=addresses.grpc, root_pem=root, log=log)
    finally:
        await asyncio.to_thread(_stop, process)


def _start_ca(work_dir: pathlib.Path, key_type: str, log: pathlib.Path) -> subprocess.Popen[bytes]:
    work_dir.mkdir(parents=True, exist_ok=True)
    tokens = work_dir / "tokens.yaml"
    grant = {"token": TOKEN, "identities": [f"spiffe://{TRUST_DOMAIN}/ns/*/sa/*"]}
    tokens.write_text(yaml.safe_dump([grant]))
    argv = [
        sys.executable, "-m", "security.ca.main",
        "--ca-dir", str(work_dir / "ca"), "--tokens", str(tokens), "--key-type", key_type,
        "--address", "127.0.0.1:0", "--mtls-address", "", "--health-address", "127.0.0.1:0",
    ]  # fmt: skip
    # The log goes to a file, not a pipe: the CA logs every issuance and a pipe nobody
    # drains would fill and stall it.
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_ready(
    process: subprocess.Popen[bytes], log: pathlib.Path, timeout: float
) -> security_parse.CaAddresses:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = security_parse.parse_ca_ready(
            await asyncio.to_thread(log.read_text, errors="replace")
        )
        if found is not None:
            return found
        if process.poll() is not None:
            break
        await asyncio.sleep(0.05)
    text = await asyncio.to_thread(log.read_text, errors="replace")
    tail = "\n".join(text.splitlines()[-10:])
    raise RuntimeError(f"istio-ca did not become ready (exit {process.poll()}):\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def issuance_load(
    ca: CaProcess,
    *,
    key_kind: str,
    workers: int,
    seconds: float,
    mode: str,
    warm_up: float = 0.5,
) -> dict[str, Any]:
    """`workers` clients issuing back to back for `seconds` (after `warm_up` not counted).

    mode "full": new key (RSA off the event loop, as the node agent does), CSR, a new TLS
    channel and CreateCertificate per issuance. mode "rpc": CreateCertificate alone, on one
    channel shared by the workers, with CSRs made beforehand.
    """
    if mode not in ("full", "rpc"):
        raise ValueError(f"unknown mode {mode!r}; want full or rpc")
    csrs = [csr_for(new_key(key_kind), IDENTITY) for _ in range(4)] if mode == "rpc" else []
    async with CaClient(ca.address, ca.root_pem, token=TOKEN) as shared:

        async def full() -> None:
            if key_kind == "rsa":
                key = await asyncio.to_thread(new_key, key_kind)
            else:
                key = new_key(key_kind)
            await create_certificate(
                ca.address, ca.root_pem, csr_for(key, IDENTITY), TTL_SECONDS, TOKEN
            )

        async def rpc(i: int) -> None:
            await shared.create_certificate(csrs[i % len(csrs)], TTL_SECONDS)

        calls = 0

        async def once() -> None:
            nonlocal calls
            calls += 1
            await (full() if mode == "full" else rpc(calls))

        await _run_workers(once, workers, warm_up)
        cpu_client = time.process_time()
        cpu_ca = ca.cpu_seconds()
        latencies, errors, wall = await _run_workers(once, workers, seconds)
        cpu_client = time.process_time() - cpu_client
        cpu_ca = ca.cpu_seconds() - cpu_ca
    issued = len(latencies)
    return {
        "mode": mode,
        "workload_key": key_kind,
        "workers": workers,
        "seconds": round(wall, 2),
        "issued": issued,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "per_s": round(issued / wall, 1),
        "latency": Summary.of_seconds(latencies).to_json() if latencies else None,
        "client_cpu_percent": round(100 * cpu_client / wall, 1),
        "ca_cpu_percent": round(100 * cpu_ca / wall, 1),
        "ca_cpu_ms_per_cert": round(cpu_ca / issued * 1e3, 3) if issued else None,
        "client_cpu_ms_per_cert": round(cpu_client / issued * 1e3, 3) if issued else None,
    }


async def _run_workers(
    once: Callable[[], Any], workers: int, seconds: float
) -> tuple[list[float], list[str], float]:
    """Run `once` back to back in `workers` tasks until `seconds` pass (none cut short)."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors: list[str] = []
    started = loop.time()
    deadline = started + seconds

    async def worker() -> None:
        while loop.time() < deadline:
            begun = loop.time()
            try:
                async with asyncio.timeout(30):
                    await once()
            except Exception as error:  # a failed issuance is a data point, not a crash
                errors.append(f"{type(error).__name__}: {error}"[:200])
            else:
                latencies.append(loop.time() - begun)

    async with asyncio.TaskGroup() as tasks:
        for _ in range(workers):
            tasks.create_task(worker())
    return latencies, errors, loop.time() - started


async def run(*, sign_seconds: float, load_seconds: float, workers: int) -> dict[str, Any]:
    """Part 1 of the security benchmark, printing each figure as it comes."""
    signing = []
    for ca_key in KEY_KINDS:
        for workload_key in KEY_KINDS:
            result = signing_rate(ca_key, workload_key, sign_seconds)
            signing.append(result)
            print(
                f"in process, CA {ca_key:3} workload {workload_key:3}: sign_workload "
                f"{result['sign']['per_s']:7.0f}/s ({result['sign']['ms_each']:.3f} ms), "
                f"with parse_csr {result['parse_and_sign']['per_s']:7.0f}/s",
                flush=True,
            )
    client = []
    for kind in KEY_KINDS:
        result = csr_rate(kind, sign_seconds)
        client.append(result)
        print(f"client key + CSR, {kind:3}: {result['per_s']:7.1f}/s", flush=True)
    runs = [  # (CA key, mode, workload key, workers)
        ("ec", "full", "ec", 1),
        ("ec", "full", "ec", workers),
        ("ec", "rpc", "ec", workers),
        ("ec", "full", "rsa", workers),
        ("ec", "rpc", "rsa", workers),
        ("rsa", "rpc", "ec", workers),
    ]
    loads = []
    with tempfile.TemporaryDirectory(prefix="bench-security-ca-") as work:
        for ca_key in KEY_KINDS:
            async with ca_process(pathlib.Path(work) / ca_key, key_type=ca_key) as ca:
                for _, mode, kind, count in (r for r in runs if r[0] == ca_key):
                    result = await issuance_load(
                        ca, key_kind=kind, workers=count, seconds=load_seconds, mode=mode
                    )
                    loads.append({"ca_key": ca_key, **result})
                    _print_load(loads[-1])
    return {"signing_in_process": signing, "client_key_and_csr": client, "over_grpc": loads}


def _print_load(result: dict[str, Any]) -> None:
    latency = result["latency"] or {}
    print(
        f"over gRPC+TLS, CA {result['ca_key']:3} {result['mode']:4} {result['workload_key']:3} "
        f"x{result['workers']}: {result['per_s']:6.1f}/s, p50 {latency.get('p50_ms', 0):6.1f} "
        f"p99 {latency.get('p99_ms', 0):6.1f} ms, CA CPU {result['ca_cpu_percent']}% "
        f"({result['ca_cpu_ms_per_cert']} ms/cert), client CPU {result['client_cpu_percent']}%, "
        f"errors {result['errors']}",
        flush=True,
    )
