"""The agent feeding the real Envoy over SDS: handshakes, rotation, a CA outage, a new root."""

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
import shutil
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from security.nodeagent.agent import NodeAgent
from security.nodeagent.certificate import certificate_uris
from security.nodeagent.fakeca import TEST_TOKEN, FakeCa, FakeCaServer
from security.nodeagent.options import NodeAgentOptions
from security.nodeagent.testing import (
    ENVOY_BODY,
    TLS_LISTENER,
    EnvoyProcess,
    TlsClient,
    eventually,
    run_async,
    sds_envoy_bootstrap,
    write_workload,
)

REVIEWS = "spiffe://cluster.local/ns/bookinfo/sa/reviews"
CLIENT = "spiffe://cluster.local/ns/default/sa/sleep"
HANDSHAKE_REFUSED = (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)


@pytest.fixture
def workdir() -> Iterator[pathlib.Path]:
    # Short: the SDS socket's path must fit in 107 bytes.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="na-envoy-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def uris(certificate: x509.Certificate) -> tuple[str, ...]:
    return certificate_uris(certificate.public_bytes(serialization.Encoding.PEM))


@dataclasses.dataclass
class Mesh:
    ca: FakeCaServer
    agent: NodeAgent
    envoy: EnvoyProcess
    address: tuple[str, int]

    def client(self, roots: bytes | None = None) -> TlsClient:
        """A client with a certificate from the CA's current root, trusting `roots`."""
        cert, key = self.ca.ca.issue(CLIENT)
        return TlsClient(roots or self.ca.ca.root_pem.encode(), cert, key)

    def entry(self) -> dict[str, Any]:
        [status] = [s for s in self.agent.cache.status() if s.identity == REVIEWS]
        return status.to_json()


@contextlib.asynccontextmanager
async def mesh(workdir: pathlib.Path, ttl: float) -> AsyncIterator[Mesh]:
    """A fake CA over gRPC+TLS, the agent (in this process) and one Envoy fed by it."""
    ca = FakeCaServer(FakeCa(intermediate=True))
    await ca.start()
    root = workdir / "root-cert.pem"
    root.write_bytes(ca.tls_root_pem)
    token = workdir / "token"
    token.write_text(TEST_TOKEN)
    options = NodeAgentOptions(
        ca_address=ca.address,
        ca_root=root,
        token_file=token,
        run_dir=workdir,
        status_address="127.0.0.1:0",
        ttl=ttl,
    )
    socket = workdir / "sds" / "reviews" / "sds.sock"
    write_workload(options.workloads_path, "reviews", REVIEWS, socket)
    agent = NodeAgent(options=options)
    stop, started = asyncio.Event(), asyncio.Event()
    envoy = EnvoyProcess(
        sds_envoy_bootstrap(socket, namespace="bookinfo", service_account="reviews"),
        workdir / "envoy",
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(agent.run(stop, started=started), name="agent")
            try:
                async with asyncio.timeout(10):
                    await started.wait()
                envoy.start()
                address = await envoy.wait_listener(TLS_LISTENER)
                yield Mesh(ca, agent, envoy, address)
            finally:
                envoy.stop()
                stop.set()
    finally:
        await ca.stop()


@run_async
async def test_envoy_presents_the_workload_certificate_from_sds(workdir: pathlib.Path) -> None:
    async with mesh(workdir, ttl=3600) as m:
        status, body, leaf = await m.client().get(*m.address)
        assert status == 200
        assert body == ENVOY_BODY
        assert uris(leaf) == (REVIEWS,)
        assert format(leaf.serial_number, "x") == m.entry()["serial"]

        # mTLS: the trust bundle came over SDS too. Without a client certificate, or with
        # one from another CA, the handshake is refused.
        root = m.ca.ca.root_pem.encode()
        for refused in (TlsClient(root), TlsClient(root, *FakeCa().issue(CLIENT))):
            with pytest.raises(HANDSHAKE_REFUSED):
                await refused.get(*m.address)

        sds = m.agent.sds.status()
        assert sds["counters"]["nacks"] == 0
        assert {name for s in sds["streams"] for name in s["names"]} == {"default", "ROOTCA"}


@run_async(timeout=90)
async def test_rotation_reaches_envoy_without_a_restart(workdir: pathlib.Path) -> None:
    async with mesh(workdir, ttl=4) as m:
        client = m.client()
        serials: list[int] = []
        connections = 0
        async with asyncio.timeout(60):
            while len(serials) < 4:
                status, _, leaf = await client.get(*m.address)  # every one must succeed
                assert status == 200
                assert uris(leaf) == (REVIEWS,)
                connections += 1
                if not serials or serials[-1] != leaf.serial_number:
                    serials.append(leaf.serial_number)
                await asyncio.sleep(0.1)
        assert len(set(serials)) == len(serials)  # each certificate replaced once, in turn
        assert m.entry()["rotations"] >= 3
        assert m.agent.sds.counters.pushes >= 3
        assert m.agent.sds.counters.nacks == 0
        assert connections > len(serials)


@run_async(timeout=120)
async def test_ca_outage_keeps_the_current_certificate_then_recovers(
    workdir: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="security.nodeagent")
    async with mesh(workdir, ttl=20) as m:
        client = m.client()
        _, _, leaf = await client.get(*m.address)
        served = leaf.serial_number
        await m.ca.stop()

        # Renewal (at half-life) fails and is retried with back-off, and logged.
        await eventually(lambda: m.entry()["failures"] >= 3, timeout=30, what="CA retries")
        assert "UNAVAILABLE" in m.entry()["last_error"]
        assert "retrying in" in caplog.text
        # Meanwhile Envoy serves the current certificate (valid for about 10 s more).
        assert time.time() < leaf.not_valid_after_utc.timestamp(), "test too slow to check"
        for _ in range(3):
            status, _, current = await client.get(*m.address)
            assert status == 200
            assert current.serial_number == served
        assert m.entry()["serial"] == format(served, "x")

        await m.ca.start()  # same port
        await eventually(
            lambda: m.entry()["serial"] != format(served, "x"), timeout=30, what="recovery"
        )
        assert "CA reached again" in caplog.text
        async with asyncio.timeout(10):
            while True:
                status, _, current = await client.get(*m.address)
                assert status == 200
                if current.serial_number != served:
                    break
                await asyncio.sleep(0.1)
        assert format(current.serial_number, "x") == m.entry()["serial"]


@run_async(timeout=90)
async def test_a_new_root_reaches_envoy_as_rootca(workdir: pathlib.Path) -> None:
    async with mesh(workdir, ttl=4) as m:
        old_root = m.ca.ca.root_pem.encode()
        old_client = m.client()
        assert (await old_client.get(*m.address))[0] == 200

        m.ca.ca.replace_root()  # an operator plugs in another root
        new_root = m.ca.ca.root_pem.encode()
        both = old_root + new_root
        new_client = m.client(roots=both)

        # At the next rotation Envoy's certificate chains to the new root, and Envoy trusts
        # clients of the new root (ROOTCA was pushed).
        async with asyncio.timeout(30):
            while True:
                try:
                    status, _, leaf = await new_client.get(*m.address)
                except HANDSHAKE_REFUSED:
                    await asyncio.sleep(0.1)
                    continue
                assert status == 200
                if leaf.issuer != x509.load_pem_x509_certificate(old_root).subject:
                    break
                await asyncio.sleep(0.1)
        # Once no certificate of this node chains to the old root, it is no longer trusted.
        async with asyncio.timeout(30):
            while True:
                try:
                    await TlsClient(both, *m.ca.ca.issue(CLIENT)).get(*m.address)
                    await old_client.get(*m.address)
                except HANDSHAKE_REFUSED:
                    break
                await asyncio.sleep(0.1)
        assert m.agent.cache.root_bundle() == new_root
        assert m.agent.sds.counters.nacks == 0
