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

from pkg.ca.client import CaClient, create_certificate
from pkg.ca.csr import csr_for, new_key
from security.ca import cadir
from security.ca.authority import CertificateAuthority, IssuePolicy
from security.ca.identity import SpiffeId
from security.ca.request import parse_csr
from security.ca.testing import write_tokens
from tools.bench import security_parse
from tools.bench.stats import Summary
from tools.local.topology import ROOT, base_env

TRUST_DOMAIN = "cluster.local"
IDENTITY = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/bench"
TOKEN = "security-bench-token"
KEY_KINDS = ("ec", "rsa")
KEY_NAMES = {"ec": "ECDSA P-256", "rsa": "RSA 2048"}
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


def _rate(count: int, elapsed: float) -> dict[str, float]:
    return {"per_s": round(count / elapsed, 1), "ms_each": round(elapsed / count * 1e3, 3)}


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
        "sign": _rate(*_timed_loop(seconds, sign)),
        "parse_and_sign": _rate(*_timed_loop(seconds, parse_and_sign)),
    }


def csr_rate(key_kind: str, seconds: float) -> dict[str, Any]:
    """Fresh keys and CSRs a second, one thread: the client's work before each request."""
    return {
        "workload_key": key_kind,
        **_rate(*_timed_loop(seconds, lambda: csr_for(new_key(key_kind), IDENTITY))),
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
    work_dir.mkdir(parents=True, exist_ok=True)
    tokens = write_tokens(
        work_dir / "tokens.yaml", {TOKEN: [f"spiffe://{TRUST_DOMAIN}/ns/*/sa/*"]}
    )
    log = work_dir / "istio-ca.log"
    argv = [
        sys.executable, "-m", "security.ca.main",
        "--ca-dir", str(work_dir / "ca"), "--tokens", str(tokens), "--key-type", key_type,
        "--address", "127.0.0.1:0", "--mtls-address", "", "--health-address", "127.0.0.1:0",
    ]  # fmt: skip
    # The log goes to a file, not a pipe: the CA logs every issuance and a pipe nobody
    # drains would fill and stall it.
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        addresses = await _wait_ready(process, log, timeout)
        root = (work_dir / "ca" / cadir.ROOT_CERT).read_bytes()
        yield CaProcess(pid=process.pid, address=addresses.grpc, root_pem=root, log=log)
    finally:
        await asyncio.to_thread(_stop, process)


async def _wait_ready(
    process: subprocess.Popen[bytes], log: pathlib.Path, timeout: float
) -> security_parse.CaAddresses:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = security_parse.parse_ca_ready(log.read_text(errors="replace"))
        if found is not None:
            return found
        if process.poll() is not None:
            break
        await asyncio.sleep(0.05)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
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
