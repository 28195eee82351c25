"""istio_ca as a process: ready line, a certificate over TLS, SIGTERM, restart with the same
root, and a clear failure on bad key material."""

import asyncio
import contextlib
import dataclasses
import pathlib
import re
import signal

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec

from pkg.testing import programs
from security.ca.bundle import key_pem
from security.ca.testing import issue_once, run_async, write_plugged_in, write_tokens

A = "spiffe://cluster.local/ns/default/sa/a"
READY = re.compile(
    r"istio-ca ready: gRPC TLS on (\S+), mTLS on (\S+), HTTP on (\S+); "
    r"(\S+) CA for (\S+), root sha256 ([0-9a-f]{64})"
)


@dataclasses.dataclass
class Process:
    process: asyncio.subprocess.Process
    log: pathlib.Path

    def text(self) -> str:
        return self.log.read_text()

    async def ready(self) -> re.Match:
        async with asyncio.timeout(30):
            while not (match := READY.search(self.text())):
                assert self.process.returncode is None, self.text()
                await asyncio.sleep(0.05)
        return match


@contextlib.asynccontextmanager
async def istio_ca(tmp_path, ca_dir, log_name="ca.log"):
    write_tokens(tmp_path / "tokens.yaml", {"token-a": [A]})
    log = tmp_path / log_name
    with await asyncio.to_thread(open, log, "wb") as output:
        process = await asyncio.create_subprocess_exec(
            *programs.command(
                "security.ca.main",
                f"--ca-dir={ca_dir}",
                f"--tokens={tmp_path / 'tokens.yaml'}",
                "--address=127.0.0.1:0",
                "--mtls-address=127.0.0.1:0",
                "--health-address=127.0.0.1:0",
            ),
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            env=programs.environ(),
        )
    try:
        yield Process(process, log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _stop(ca: Process) -> int:
    ca.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        return await ca.process.wait()


@run_async
async def test_serves_stops_on_sigterm_and_keeps_its_root(tmp_path):
    ca_dir = tmp_path / "ca"
    async with istio_ca(tmp_path, ca_dir) as ca:
        address, _, health, mode, trust_domain, fingerprint = (await ca.ready()).groups()
        assert (mode, trust_domain) == ("self-signed", "cluster.local")
        root_pem = (ca_dir / "root-cert.pem").read_bytes()
        issued = await issue_once(address, root_pem, A, token="token-a")
        assert len(issued.chain) == 2
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{health}/ready") as response,
        ):
            assert response.status == 200
            assert (await response.json())["rootSha256"] == fingerprint
        assert await _stop(ca) == 0
        assert "istio-ca stopped" in ca.text()

    async with istio_ca(tmp_path, ca_dir, "again.log") as again:
        assert (await again.ready()).group(6) == fingerprint
        assert await _stop(again) == 0


@run_async
async def test_a_plugged_in_key_that_does_not_match_fails_the_start(tmp_path):
    ca_dir = tmp_path / "cacerts"
    write_plugged_in(ca_dir)
    (ca_dir / "ca-key.pem").write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    async with istio_ca(tmp_path, ca_dir) as ca:
        async with asyncio.timeout(30):
            code = await ca.process.wait()
        assert code == 1
        assert "istio-ca cannot start: plugged-in CA in" in ca.text()
        assert "the CA key does not match the CA certificate's public key" in ca.text()
        assert "Traceback" not in ca.text()
