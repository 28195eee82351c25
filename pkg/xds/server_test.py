"""The engine with a snapshot cache behind it, as go-control-plane is used: over in-memory
streams (no sockets) and over real gRPC (ADS and SDS)."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from pkg.testing.aio import run_async
from pkg.xds import grpcservice
from pkg.xds import resources as res
from pkg.xds.cache import SnapshotCache, StaticSnapshot
from pkg.xds.connection import Connection, Transport
from pkg.xds.counters import Counters
from pkg.xds.peer import Peer, StreamInfo
from pkg.xds.resources import Resource, Resources
from pkg.xds.response import Response
from pkg.xds.server import Identified, InvalidStreamError, Server, ServerOptions
from pkg.xds.testing import MemoryTransport, XdsDriver, unpack

# Conformance: the in-memory stream is a server transport.
_check: Transport = MemoryTransport()


def identify(request: discovery_pb2.DiscoveryRequest) -> Identified[str]:
    if not request.node.id:
        raise InvalidStreamError("the first request names no node")
    return Identified(
        key=request.node.cluster or request.node.id, node=request.node.id, name=request.node.id
    )


def node(node_id: str, group: str = "") -> base_pb2.Node:
    return base_pb2.Node(id=node_id, cluster=group)


def endpoints(**weights: int) -> Resources:
    items = []
    for name, weight in sorted(weights.items()):
        message = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
        message.endpoints.add().load_balancing_weight.value = weight
        items.append(Resource(name, message))
    return Resources.of(res.ENDPOINT, items)


def clusters(*names: str) -> Resources:
    return Resources.of(res.CLUSTER, [Resource(n, cluster_pb2.Cluster(name=n)) for n in names])


def snapshot(cds: Resources, eds: Resources | None = None) -> StaticSnapshot:
    return StaticSnapshot({res.CLUSTER: cds, res.ENDPOINT: eds or endpoints()})


@run_async
async def test_a_stream_waits_for_its_snapshot_then_gets_every_change():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify))
    async with XdsDriver.memory(server, node("a")) as ads:
        await ads.request(res.CLUSTER)
        await ads.expect_no_response()  # nothing for key "a" yet
        cache.set_snapshot("a", snapshot(clusters("x")))
        first = await ads.expect_response(res.CLUSTER)
        assert [c.name for c in unpack(first, cluster_pb2.Cluster)] == ["x"]
        await ads.ack(first)
        cache.set_snapshot("a", snapshot(clusters("x")))  # same content: nothing sent
        await ads.expect_no_response()
        cache.set_snapshot("a", snapshot(clusters("x", "y")))
        pushed = await ads.expect_response(res.CLUSTER)
        assert len(pushed.resources) == 2
        assert pushed.version_info != first.version_info
    assert server.counters.pushed_responses == 1
    assert server.counters.acks == 1


@run_async
async def test_streams_of_one_key_share_its_snapshot_and_others_do_not_see_it():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify))
    cache_key = "group"
    async with (
        XdsDriver.memory(server, node("a", cache_key)) as a,
        XdsDriver.memory(server, node("b", cache_key)) as b,
        XdsDriver.memory(server, node("c")) as c,
    ):
        for driver in (a, b, c):
            await driver.request(res.CLUSTER)
        cache.set_snapshot(cache_key, snapshot(clusters("x")))
        assert (await a.expect_response()).version_info == (await b.expect_response()).version_info
        await c.expect_no_response()


@run_async
async def test_an_endpoint_push_carries_only_what_changed_a_request_everything():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify))
    eds = endpoints(a=1, b=1, c=1)
    cache.set_snapshot("n", snapshot(clusters("a", "b", "c"), eds))
    async with XdsDriver.memory(server, node("n")) as ads:
        first = await ads.request_response_ack(res.ENDPOINT, ["a", "b", "c"])
        assert len(first.resources) == 3
        changed = eds.replace(endpoints(b=7))
        cache.set_snapshot("n", snapshot(clusters("a", "b", "c"), changed))
        pushed = await ads.expect_response(res.ENDPOINT)
        (only,) = unpack(pushed, endpoint_pb2.ClusterLoadAssignment)
        assert only.cluster_name == "b"
        assert only.endpoints[0].load_balancing_weight.value == 7
        assert pushed.version_info == changed.version  # the version of the whole set
        await ads.ack(pushed)
        again = await ads.request_response_ack(res.ENDPOINT, ["a", "b", "c"])
        assert len(again.resources) == 3


@run_async
async def test_a_stream_the_authorize_hook_refuses_is_not_served():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    seen: list[StreamInfo[str]] = []

    def authorize(stream: StreamInfo[str]) -> str | None:
        seen.append(stream)
        return None if stream.node == "allowed" else f"{stream.node} may not be served"

    server = Server(cache, ServerOptions(identify=identify, authorize=authorize))
    cache.set_snapshot("allowed", snapshot(clusters("x")))
    async with XdsDriver.memory(server, node("allowed"), peer=Peer(address="unix:one")) as ok:
        await ok.request(res.CLUSTER)
        await ok.expect_response(res.CLUSTER)
    with pytest.raises(ExceptionGroup) as raised:  # noqa: PT012  the refusal surfaces at any step of the stream or at its close
        async with XdsDriver.memory(server, node("other")) as refused:
            await refused.request(res.CLUSTER)
            await refused.expect_end()
    assert raised.group_contains(PermissionError, match="other may not be served")
    assert [s.peer.address for s in seen] == ["unix:one", "memory"]
    assert server.counters.rejected_streams == 1


@run_async
async def test_a_request_the_hook_refuses_ends_the_stream():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()

    def authorize_request(stream: StreamInfo[str], request: discovery_pb2.DiscoveryRequest):
        return "no endpoints for you" if request.type_url == res.ENDPOINT else None

    server = Server(cache, ServerOptions(identify=identify, authorize_request=authorize_request))
    cache.set_snapshot("n", snapshot(clusters("x")))
    with pytest.raises(ExceptionGroup) as raised:  # noqa: PT012  the refusal surfaces at any step of the stream or at its close
        async with XdsDriver.memory(server, node("n")) as ads:
            await ads.request_response_ack(res.CLUSTER)
            await ads.request(res.ENDPOINT, ["x"])
            await ads.expect_end()
    assert raised.group_contains(PermissionError, match="no endpoints for you")


@run_async
async def test_types_not_served_are_ignored():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify, type_urls=frozenset({res.CLUSTER})))
    cache.set_snapshot("n", snapshot(clusters("x")))
    async with XdsDriver.memory(server, node("n")) as ads:
        await ads.request(res.ENDPOINT, ["x"])
        await ads.expect_no_response()
        await ads.request_response_ack(res.CLUSTER)


class BlockingTransport:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def recv(self) -> None:
        await asyncio.Event().wait()

    async def send(self, response: object) -> None:
        await self.release.wait()


@run_async
async def test_a_second_writer_on_one_stream_fails_loudly():
    transport = BlockingTransport()
    info = StreamInfo("c1", "k", "n", base_pb2.Node(id="n"), Peer(), "n")
    conn: Connection[str] = Connection(info, transport, Counters(), log=logging.getLogger("test"))
    response = Response(res.CLUSTER, "v", "n-1", clusters())
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(conn._write(response), name="first writer")
        await asyncio.sleep(0)  # the first writer is now inside send()
        with pytest.raises(RuntimeError, match="two writers"):
            await conn._write(response)
        transport.release.set()


# Over real gRPC.


class Harness:
    def __init__(self, server: Server[str], service: grpcservice.Service, **kw: object) -> None:
        self.engine = server
        self.grpc = grpc.aio.server()
        grpcservice.add_to(self.grpc, server, service, **kw)  # type: ignore[arg-type]
        self.target = f"127.0.0.1:{self.grpc.add_insecure_port('127.0.0.1:0')}"

    async def __aenter__(self) -> Harness:
        await self.grpc.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.stop(grace=5)
        await self.grpc.stop(grace=5)


@run_async
async def test_ads_over_grpc_decodes_as_protobuf_and_maps_errors_to_statuses():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify))
    cache.set_snapshot("n", snapshot(clusters("x", "y")))
    async with Harness(server, grpcservice.ADS) as harness:
        async with XdsDriver.ads(harness.target, node("n")) as ads:
            response = await ads.request_response_ack(res.CLUSTER)
            assert [c.name for c in unpack(response, cluster_pb2.Cluster)] == ["x", "y"]
            (conn,) = server.connections()
            assert conn.stream.peer.address.startswith("ipv4:127.0.0.1:")
            assert conn.stream.peer.identities is None  # plaintext
        async with XdsDriver.ads(harness.target, node("")) as nameless:
            await nameless.request(res.CLUSTER)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await nameless.call.read()  # type: ignore[union-attr]
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "names no node" in raised.value.details()  # type: ignore[operator]


@run_async
async def test_sds_over_grpc_streams_and_fetches():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache(keep=True)
    server = Server(cache, ServerOptions(identify=identify, label="SDS"))
    # Any type will do: what is tested is the SDS service and its unary Fetch.
    cache.set_snapshot("n", StaticSnapshot({res.ENDPOINT: endpoints(default=1)}))
    peers: list[Peer] = []

    async def fetch(request: discovery_pb2.DiscoveryRequest, peer: Peer, remaining: float | None):
        peers.append(peer)
        found = cache.snapshot(request.node.id).resources(request.type_url, None)  # type: ignore[union-attr]
        return Response(request.type_url, found.version, "f-1", found)  # type: ignore[union-attr,arg-type]

    async with Harness(server, grpcservice.SDS, fetch=fetch) as harness:
        async with XdsDriver.sds(harness.target, node("n")) as sds:
            response = await sds.request_response_ack(res.ENDPOINT, ["default"])
            assert len(response.resources) == 1
        async with grpc.aio.insecure_channel(harness.target) as channel:
            request = discovery_pb2.DiscoveryRequest(type_url=res.ENDPOINT, node=node("n"))
            fetched = await sds_pb2_grpc.SecretDiscoveryServiceStub(channel).FetchSecrets(
                request, timeout=5
            )
            assert fetched.version_info == response.version_info
        assert peers[0].address.startswith("ipv4:127.0.0.1:")


# DiscoveryRequest.type_url (field 4), a proto3 string: whole, cut short, not UTF-8.
_TYPE_URL = b"\x22\x04abcd"
UNDECODABLE = [b"\xff" * 16, _TYPE_URL[:-2], _TYPE_URL[:2] + b"\xc3\x28cd"]


@pytest.mark.parametrize("data", UNDECODABLE, ids=["random", "truncated", "invalid-utf8"])
@run_async
async def test_undecodable_requests_end_the_stream_or_fetch_invalid_argument(data: bytes):
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify, label="SDS"))
    cache.set_snapshot("n", snapshot(clusters("x")))

    async def fetch(request, peer, remaining):
        raise AssertionError("an undecodable Fetch reached the engine")

    async with (
        Harness(server, grpcservice.SDS, fetch=fetch) as harness,
        grpc.aio.insecure_channel(harness.target) as channel,
    ):
        base = "/envoy.service.secret.v3.SecretDiscoveryService"
        # As the first request of a stream, and after a good one.
        good = discovery_pb2.DiscoveryRequest(type_url=res.CLUSTER, node=node("n"))
        for opening in ([], [good.SerializeToString()]):
            stream = channel.stream_stream(f"{base}/StreamSecrets")()
            for message in [*opening, data]:
                await stream.write(message)
            with pytest.raises(grpc.aio.AioRpcError) as raised:  # noqa: PT012  read until the stream ends
                while True:
                    await stream.read()
            assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "cannot parse the request as envoy.service.discovery.v3." in (
                raised.value.details() or ""
            )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary(f"{base}/FetchSecrets")(data, timeout=5)
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert server.counters.rejected_streams == 1  # the stream that opened with it


class CountingTransport(MemoryTransport):
    """Sends that take a while, counting how many run at once."""

    in_flight = 0
    most = 0

    async def send(self, response: Response) -> None:
        CountingTransport.in_flight += 1
        CountingTransport.most = max(CountingTransport.most, CountingTransport.in_flight)
        await asyncio.sleep(0.02)
        CountingTransport.in_flight -= 1
        await super().send(response)


@run_async
async def test_sends_in_flight_are_bounded_over_all_streams():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify, max_concurrent_sends=2))
    cache.set_snapshot("shared", snapshot(clusters("x")))
    transports = [CountingTransport() for _ in range(6)]
    async with asyncio.TaskGroup() as tasks:
        for n, transport in enumerate(transports):
            tasks.create_task(server.serve(transport, Peer()))
            request = discovery_pb2.DiscoveryRequest(
                type_url=res.CLUSTER, node=node(f"n{n}", "shared")
            )
            await transport.requests.put(request)
        for transport in transports:
            async with asyncio.timeout(5):
                await transport.responses.get()
        assert CountingTransport.most == 2
        await server.stop(1)
        for transport in transports:
            await transport.requests.put(None)


@run_async
async def test_a_grown_subscription_is_answered_with_the_new_names_only():
    # As Envoy asks after a CDS change: the ACKed nonce, one more cluster.
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify))
    eds = endpoints(a=1, b=1)
    cache.set_snapshot("n", snapshot(clusters("a", "b"), eds))
    async with XdsDriver.memory(server, node("n")) as ads:
        first = await ads.request_response_ack(res.ENDPOINT, ["a", "b"])
        grown = eds.replace(endpoints(c=1))
        cache.set_snapshot("n", snapshot(clusters("a", "b", "c"), grown))
        await ads.expect_no_response()  # nothing the stream asked for changed
        await ads.request(res.ENDPOINT, ["a", "b", "c"], nonce=first.nonce)
        response = await ads.expect_response(res.ENDPOINT)
        assert [a.cluster_name for a in unpack(response, endpoint_pb2.ClusterLoadAssignment)] == [
            "c"
        ]
        assert response.version_info == grown.version
        await ads.ack(response, ["a", "b", "c"])
        # A request without a nonce (a reconnect would send one) gets everything again.
        again = await ads.request_response_ack(res.ENDPOINT, ["a", "b", "c"])
        assert len(again.resources) == 3


@run_async
async def test_changed_clusters_get_their_endpoints_again_for_envoy_to_warm():
    # Envoy replaces a cluster whose definition changed and waits for its endpoints in a
    # new EDS response, unchanged or not; its own request then is a plain ACK.
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify))
    eds = endpoints(a=1, b=1)
    cache.set_snapshot("n", snapshot(clusters("a", "b"), eds))
    async with XdsDriver.memory(server, node("n")) as ads:
        await ads.request_response_ack(res.CLUSTER)
        await ads.request_response_ack(res.ENDPOINT, ["a", "b"])
        cds = clusters("a", "b")
        changed = cds.replace(
            Resources.of(res.CLUSTER, [Resource("b", cluster_pb2.Cluster(name="b", lb_policy=2))])
        )
        cache.set_snapshot("n", snapshot(changed, eds))
        pushed = await ads.expect_response(res.CLUSTER)
        warm = await ads.expect_response(res.ENDPOINT)
        assert [a.cluster_name for a in unpack(warm, endpoint_pb2.ClusterLoadAssignment)] == ["b"]
        await ads.ack(pushed)
        await ads.ack(warm, ["a", "b"])
        await ads.expect_no_response()
        # Same clusters again: no CDS, and so no endpoints either.
        cache.set_snapshot("n", snapshot(changed, eds))
        await ads.expect_no_response()


@run_async
async def test_clusters_rebuilt_unchanged_get_no_endpoints_again():
    # A full push regenerates every cluster; only those whose bytes differ are warmed by Envoy,
    # so only their endpoints follow (at 2000 proxies, all of them doubled the push).
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    server = Server(cache, ServerOptions(identify=identify))
    eds = endpoints(a=1, b=1)
    cache.set_snapshot("n", snapshot(clusters("a", "b"), eds))
    async with XdsDriver.memory(server, node("n")) as ads:
        await ads.request_response_ack(res.CLUSTER)
        await ads.request_response_ack(res.ENDPOINT, ["a", "b"])
        rebuilt = Resources.of(
            res.CLUSTER,
            [
                Resource("a", cluster_pb2.Cluster(name="a")),
                Resource("b", cluster_pb2.Cluster(name="b", lb_policy=2)),
                Resource("c", cluster_pb2.Cluster(name="c")),
            ],
        )
        cache.set_snapshot("n", snapshot(rebuilt, eds))
        pushed = await ads.expect_response(res.CLUSTER)
        warm = await ads.expect_response(res.ENDPOINT)
        assert [a.cluster_name for a in unpack(warm, endpoint_pb2.ClusterLoadAssignment)] == ["b"]
        await ads.ack(pushed)
        await ads.ack(warm, ["a", "b"])
        await ads.expect_no_response()
