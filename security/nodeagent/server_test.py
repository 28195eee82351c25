import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from envoy.service.discovery.v3 import discovery_pb2

from pkg.xds.testing import XdsDriver
from security.nodeagent import keys
from security.nodeagent.cache import CacheOptions, SecretCache
from security.nodeagent.certificate import certificate_uris
from security.nodeagent.fakeca import FakeCa
from security.nodeagent.identity import identity_from_node
from security.nodeagent.resources import SECRET_TYPE
from security.nodeagent.server import InvalidStreamError, SdsServer
from security.nodeagent.testing import FakeClock, node, run_async, secrets_of, vouched_peer

REVIEWS = "spiffe://cluster.local/ns/bookinfo/sa/reviews"


class Mesh:
    """A secret cache on fake time, signed by a FakeCa, behind an SdsServer."""

    def __init__(self, *, ttl: float = 100.0) -> None:
        self.clock = FakeClock()
        self.ca = FakeCa(clock=self.clock, intermediate=True)
        self.cache = SecretCache(
            signer=self.ca,
            options=CacheOptions(ttl=ttl, fallback_root_pem=self.ca.root_pem.encode()),
            clock=self.clock,
            rng=random.Random(7),
        )
        self.sds = SdsServer(cache=self.cache, trust_domain="cluster.local")


@contextlib.asynccontextmanager
async def mesh(**kwargs: float) -> AsyncIterator[Mesh]:
    result = Mesh(**kwargs)
    async with asyncio.TaskGroup() as tasks:
        started = asyncio.Event()
        task = tasks.create_task(result.cache.run(started=started), name="cache")
        await started.wait()
        try:
            yield result
        finally:
            await result.sds.stop(1.0)
            task.cancel()


def sds(
    m: Mesh, envoy_node, *, vouched: str | None = None
) -> contextlib.AbstractAsyncContextManager[XdsDriver]:
    """An SDS client straight into the server, the node in every request as Envoy's, on a
    connection vouching for `vouched` (by default the identity the node claims)."""
    if vouched is None and "NAMESPACE" in envoy_node.metadata.fields:
        vouched = identity_from_node(envoy_node).spiffe_id
    peer = vouched_peer(vouched or "", "unix:/run/sds/test.sock")
    return XdsDriver.memory(m.sds, envoy_node, node_every_request=True, peer=peer)


def leaf_of(response: discovery_pb2.DiscoveryResponse) -> x509.Certificate:
    secret = secrets_of(response)["default"]
    return x509.load_pem_x509_certificate(secret.tls_certificate.certificate_chain.inline_bytes)


@run_async
async def test_default_and_rootca_for_the_nodes_identity() -> None:
    async with mesh() as m, sds(m, node("bookinfo", "reviews")) as envoy:
        await envoy.request(SECRET_TYPE, ["default", "ROOTCA"])
        response = await envoy.expect_response()
        assert response.type_url == SECRET_TYPE
        secrets = secrets_of(response)
        assert set(secrets) == {"default", "ROOTCA"}
        certificate = secrets["default"].tls_certificate
        chain = certificate.certificate_chain.inline_bytes
        assert chain.count(b"BEGIN CERTIFICATE") == 2  # leaf + intermediate, no root
        assert certificate_uris(chain) == (REVIEWS,)
        key = serialization.load_pem_private_key(
            certificate.private_key.inline_bytes, password=None
        )
        leaf = x509.load_pem_x509_certificate(chain)
        assert keys.public_key_der(key) == leaf.public_key().public_bytes(  # type: ignore[arg-type]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        trusted = secrets["ROOTCA"].validation_context.trusted_ca.inline_bytes
        assert trusted == m.ca.root_pem.encode()
        await envoy.ack(response)
        await envoy.expect_no_response()
        assert m.sds.counters.acks == 1


@run_async
async def test_rotation_is_pushed_on_the_open_stream() -> None:
    async with mesh(ttl=100) as m, sds(m, node("bookinfo", "reviews")) as envoy:
        await envoy.request(SECRET_TYPE, ["default"])
        response = await envoy.expect_response()
        await envoy.ack(response)
        serials = [leaf_of(response).serial_number]
        for _ in range(3):
            await m.clock.advance(52)
            pushed = await envoy.expect_response()
            assert pushed.version_info != envoy.accepted[SECRET_TYPE]
            serials.append(leaf_of(pushed).serial_number)
            await envoy.ack(pushed)
            await envoy.expect_no_response(0.05)
        assert len(set(serials)) == 4
        assert m.sds.counters.pushes == 3


@run_async
async def test_envoys_of_one_identity_share_its_certificate_and_its_pushes() -> None:
    async with (
        mesh() as m,
        sds(m, node("bookinfo", "reviews", node_id="a")) as first,
        sds(m, node("bookinfo", "reviews", node_id="b")) as second,
        sds(m, node("bookinfo", "ratings", node_id="c")) as other,
    ):
        for envoy in (first, second, other):
            await envoy.request(SECRET_TYPE, ["default"])
        responses = [await e.expect_response() for e in (first, second, other)]
        assert leaf_of(responses[0]).serial_number == leaf_of(responses[1]).serial_number
        assert certificate_uris(
            secrets_of(responses[2])["default"].tls_certificate.certificate_chain.inline_bytes
        ) == ("spiffe://cluster.local/ns/bookinfo/sa/ratings",)
        assert m.ca.calls == 2
        for envoy, response in zip((first, second, other), responses, strict=True):
            await envoy.ack(response)
        await m.clock.advance(52)
        pushed = [await e.expect_response() for e in (first, second)]
        assert pushed[0].version_info == pushed[1].version_info != responses[0].version_info
        assert m.ca.calls == 4


@run_async
async def test_one_stream_per_secret_as_envoy_opens_them() -> None:
    async with (
        mesh() as m,
        sds(m, node("bookinfo", "reviews")) as certificate,
        sds(m, node("bookinfo", "reviews")) as roots,
    ):
        await certificate.request(SECRET_TYPE, ["default"])
        await roots.request(SECRET_TYPE, ["ROOTCA"])
        assert set(secrets_of(await certificate.expect_response())) == {"default"}
        assert set(secrets_of(await roots.expect_response())) == {"ROOTCA"}


@run_async
async def test_nack_is_counted_and_the_same_content_not_sent_again() -> None:
    async with mesh() as m, sds(m, node("bookinfo", "reviews")) as envoy:
        await envoy.request(SECRET_TYPE, ["default"])
        response = await envoy.expect_response()
        await envoy.nack(response, "Failed to load private key")
        await envoy.expect_no_response()
        assert m.sds.counters.nacks == 1
        [stream] = m.sds.status()["streams"]
        assert stream["nacks"] == 1
        assert stream["last_nack"]["message"] == "Failed to load private key"
        # New content (the next rotation) is sent.
        await m.clock.advance(52)
        assert (await envoy.expect_response()).version_info != response.version_info


@run_async
async def test_the_certificate_is_awaited_while_the_ca_is_down() -> None:
    async with mesh() as m:
        m.ca.fail_with = "connection refused"
        async with (
            sds(m, node("bookinfo", "reviews")) as certificate,
            sds(m, node("bookinfo", "reviews")) as roots,
        ):
            await certificate.request(SECRET_TYPE, ["default"])
            await roots.request(SECRET_TYPE, ["ROOTCA"])
            # The root is known from the agent's configuration: served at once.
            assert set(secrets_of(await roots.expect_response())) == {"ROOTCA"}
            await m.clock.advance(3)
            await certificate.expect_no_response()
            m.ca.fail_with = None
            await m.clock.advance(30)
            assert set(secrets_of(await certificate.expect_response())) == {"default"}


@run_async
async def test_unknown_secret_names_are_not_served() -> None:
    async with mesh() as m, sds(m, node("bookinfo", "reviews")) as envoy:
        await envoy.request(SECRET_TYPE, ["file-cert:/etc/certs/cert-chain.pem"])
        await envoy.expect_no_response()
        await envoy.request(SECRET_TYPE, ["default", "file-cert:/etc/certs/cert-chain.pem"])
        assert set(secrets_of(await envoy.expect_response())) == {"default"}


@run_async
async def test_a_node_without_namespace_is_refused() -> None:
    async with mesh() as m:
        with pytest.raises(ExceptionGroup) as raised:  # noqa: PT012  the refusal surfaces at any step of the stream or at its close
            async with sds(m, node(None, "reviews")) as envoy:
                await envoy.request(SECRET_TYPE, ["default"])
                await envoy.expect_end()
        assert raised.group_contains(InvalidStreamError, match="no NAMESPACE")
        assert m.sds.counters.streams_rejected == 1
        assert m.ca.calls == 0


@run_async
async def test_a_stream_of_another_type_is_refused() -> None:
    async with mesh() as m:
        with pytest.raises(ExceptionGroup) as raised:  # noqa: PT012  the refusal surfaces at any step of the stream or at its close
            async with sds(m, node("bookinfo", "reviews")) as envoy:
                await envoy.request("type.googleapis.com/envoy.config.cluster.v3.Cluster", ["x"])
                await envoy.expect_end()
        assert raised.group_contains(InvalidStreamError, match="expected type")


@run_async
async def test_fetch_answers_once_the_certificate_exists() -> None:
    async with mesh() as m:
        request = discovery_pb2.DiscoveryRequest(
            type_url=SECRET_TYPE, resource_names=["default", "ROOTCA"]
        )
        request.node.CopyFrom(node("bookinfo", "reviews"))
        response = await m.sds.fetch(request, timeout=5, peer=vouched_peer(REVIEWS))
        assert set(secrets_of(response)) == {"default", "ROOTCA"}
        assert response.version_info


@run_async
async def test_a_claimed_identity_the_connection_does_not_vouch_for_is_refused() -> None:
    ratings = "spiffe://cluster.local/ns/bookinfo/sa/ratings"
    async with mesh() as m:
        with pytest.raises(ExceptionGroup) as raised:  # noqa: PT012  the refusal surfaces at any step of the stream or at its close
            async with sds(m, node("bookinfo", "reviews"), vouched=ratings) as envoy:
                await envoy.request(SECRET_TYPE, ["default"])
                await envoy.expect_end()
        assert raised.group_contains(
            PermissionError,
            match=f"asked for {REVIEWS} on unix:/run/sds/test.sock, which serves only {ratings}",
        )
        request = discovery_pb2.DiscoveryRequest(type_url=SECRET_TYPE, resource_names=["default"])
        request.node.CopyFrom(node("bookinfo", "reviews"))
        with pytest.raises(PermissionError, match="serves only"):
            await m.sds.fetch(request, timeout=5, peer=vouched_peer(ratings))
        # A connection vouching for nobody (no per-workload socket) gets nothing either.
        with pytest.raises(PermissionError, match="vouches for no identity"):
            await m.sds.fetch(request, timeout=5)
        assert m.sds.counters.streams_rejected == 3
        assert m.ca.calls == 0


@run_async
async def test_stop_ends_open_streams() -> None:
    async with mesh() as m, sds(m, node("bookinfo", "reviews")) as envoy:
        await envoy.request(SECRET_TYPE, ["default"])
        await envoy.expect_response()
        await m.sds.stop(5)
        await envoy.expect_end()
        assert m.sds.counters.streams_closed == 1
        # The stream's watch went with it.
        assert m.cache.status()[0].watchers == 0
