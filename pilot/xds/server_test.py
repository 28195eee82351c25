"""XdsServer end to end over in-memory streams (no sockets) and over real gRPC streams."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from pilot.xds.proxy import Proxy
from pilot.xds.server import XdsServer
from pilot.xds.status import SyncState
from pilot.xds.testing import TEST_NODE_ID, node, run_async
from pkg.testing.wait import eventually
from pkg.xds import resources as res
from pkg.xds.resources import Resource
from pkg.xds.testing import XdsDriver, unpack

OTHER_NODE_ID = "sidecar~127.0.0.2~other.prod~prod.svc.cluster.local"


class World:
    """A generator over a mutable table of resources; can be told to fail."""

    def __init__(self) -> None:
        self.resources: dict[str, list[Resource]] = {
            res.CLUSTER: [cluster("a")],
            res.ENDPOINT: [endpoints("a")],
            res.LISTENER: [listener("l0")],
            res.ROUTE: [route("r0")],
        }
        self.fail: set[str] = set()
        self.calls: list[tuple[str, str, list[str]]] = []

    def __call__(self, proxy: Proxy, type_url: str, names: Collection[str]) -> list[Resource]:
        self.calls.append((proxy.id, type_url, list(names)))
        if type_url in self.fail:
            raise RuntimeError(f"generator bug for {type_url}")
        return list(self.resources.get(type_url, []))


def cluster(name: str, **fields) -> Resource:
    return Resource(name, cluster_pb2.Cluster(name=name, **fields))


def endpoints(name: str) -> Resource:
    return Resource(name, endpoint_pb2.ClusterLoadAssignment(cluster_name=name))


def listener(name: str) -> Resource:
    return Resource(name, listener_pb2.Listener(name=name))


def route(name: str, header: str = "") -> Resource:
    message = route_pb2.RouteConfiguration(name=name)
    if header:
        message.response_headers_to_remove.append(header)
    return Resource(name, message)


async def started(xds: XdsServer, tasks: asyncio.TaskGroup) -> asyncio.Task[None]:
    ready = asyncio.Event()
    task = tasks.create_task(xds.run(started=ready), name="xds-push")
    await ready.wait()
    return task


@run_async
async def test_first_requests_get_typed_resources_with_exact_type_urls():
    world = World()
    xds = XdsServer(world)
    async with XdsDriver.memory(xds, node()) as ads:
        await ads.request(res.CLUSTER)
        response = await ads.expect_response(res.CLUSTER)
        assert [c.name for c in unpack(response, cluster_pb2.Cluster)] == ["a"]
        assert response.resources[0].type_url == res.CLUSTER
        assert response.version_info == res.version_of([cluster("a")])
        await ads.ack(response)

        await ads.request(res.ENDPOINT, ["a"])
        response = await ads.expect_response(res.ENDPOINT)
        assert unpack(response, endpoint_pb2.ClusterLoadAssignment)[0].cluster_name == "a"
        assert world.calls == [
            ("test.default", res.CLUSTER, []),
            ("test.default", res.ENDPOINT, ["a"]),
        ]


@run_async
async def test_rds_and_eds_responses_hold_only_requested_names():
    world = World()
    world.resources[res.ROUTE] = [route("80"), route("9080"), route("15001")]
    xds = XdsServer(world)
    async with XdsDriver.memory(xds, node()) as ads:
        response = await ads.request_response_ack(res.ROUTE, ["9080", "80"])
        assert sorted(r.name for r in unpack(response, route_pb2.RouteConfiguration)) == [
            "80",
            "9080",
        ]


@run_async
async def test_ack_gets_no_response_and_status_is_synced():
    xds = XdsServer(World())
    async with XdsDriver.memory(xds, node()) as ads:
        response = await ads.request_response_ack(res.LISTENER)
        await ads.expect_no_response()
        (status,) = xds.connections()
        lds = status.type("LDS")
        assert lds.state is SyncState.SYNCED
        assert (lds.version_sent, lds.version_acked, lds.acks) == (
            response.version_info,
            response.version_info,
            1,
        )
        assert status.type("CDS").state is SyncState.NOT_SENT
        assert (status.pod, status.namespace, status.node_id) == ("test", "default", TEST_NODE_ID)


@run_async
async def test_push_sends_only_changed_types_in_push_order():
    world = World()
    xds = XdsServer(world, debounce_after=0)
    async with asyncio.TaskGroup() as tasks, XdsDriver.memory(xds, node()) as ads:
        pusher = await started(xds, tasks)
        for type_url, names in [
            (res.LISTENER, []),
            (res.ROUTE, ["r0"]),
            (res.CLUSTER, []),
            (res.ENDPOINT, ["a"]),
        ]:
            await ads.request_response_ack(type_url, names)

        world.resources[res.ROUTE] = [route("r0", header="x-changed")]
        world.resources[res.CLUSTER] = [cluster("a", alt_stat_name="changed")]
        await xds.push("routes and clusters changed")
        first = await ads.expect_response()
        warm = await ads.expect_response()
        second = await ads.expect_response()
        # The changed cluster's endpoints follow it (Envoy warms it), then the routes.
        assert [first.type_url, warm.type_url, second.type_url] == [
            res.CLUSTER,
            res.ENDPOINT,
            res.ROUTE,
        ]
        await ads.ack(first)
        await ads.ack(warm, ["a"])
        await ads.ack(second)

        # Nothing changed: nothing sent. A later change proves the push ran past it.
        await xds.push("no-op")
        world.resources[res.LISTENER] = [listener("l0"), listener("l1")]
        await xds.push("listener added")
        response = await ads.expect_response(res.LISTENER)
        assert [m.name for m in unpack(response, listener_pb2.Listener)] == ["l0", "l1"]
        assert xds.counters.pushes >= 2
        pusher.cancel()


@run_async
async def test_incremental_push_regenerates_endpoints_only():
    world = World()
    xds = XdsServer(world, debounce_after=0)
    async with asyncio.TaskGroup() as tasks, XdsDriver.memory(xds, node()) as ads:
        pusher = await started(xds, tasks)
        await ads.request_response_ack(res.CLUSTER)
        await ads.request_response_ack(res.ENDPOINT, ["a"])
        world.calls.clear()
        world.resources[res.ENDPOINT] = [
            Resource("a", endpoint_pb2.ClusterLoadAssignment(cluster_name="a-changed"))
        ]
        await xds.push("endpoints", full=False)
        await ads.expect_response(res.ENDPOINT)
        assert [type_url for _, type_url, _ in world.calls] == [res.ENDPOINT]
        pusher.cancel()


@run_async
async def test_every_push_request_and_push_is_reported_as_activity():
    seen: list[str] = []
    xds = XdsServer(World(), debounce_after=0, on_activity=lambda: seen.append("busy"))
    async with asyncio.TaskGroup() as tasks, XdsDriver.memory(xds, node()) as ads:
        pusher = await started(xds, tasks)
        await ads.request_response_ack(res.CLUSTER)
        assert seen == []
        await xds.push("clusters changed")
        await eventually(lambda: xds.counters.pushes == 1, timeout=5, what="the push")
        assert seen == ["busy", "busy"]  # the request, then the push that carried it out
        pusher.cancel()


@run_async
async def test_nack_keeps_last_good_is_counted_and_shown(caplog: pytest.LogCaptureFixture):
    world = World()
    xds = XdsServer(world, debounce_after=0)
    async with asyncio.TaskGroup() as tasks, XdsDriver.memory(xds, node()) as ads:
        pusher = await started(xds, tasks)
        good = await ads.request_response_ack(res.CLUSTER)
        world.resources[res.CLUSTER] = [cluster("bad", alt_stat_name="x")]
        await xds.push("bad cluster")
        bad = await ads.expect_response(res.CLUSTER)
        with caplog.at_level(logging.WARNING, logger="pilot.xds"):
            await ads.nack(bad, "Proto constraint validation failed: cluster bad")
            # The same bad content regenerated is not resent; the next change is.
            await xds.push("unrelated")
            world.resources[res.CLUSTER] = [cluster("a")]
            await xds.push("fixed")
            fixed = await ads.expect_response(res.CLUSTER)
        assert fixed.version_info == good.version_info
        assert xds.counters.nacks == 1
        assert any(
            "NACK from " + TEST_NODE_ID in r.getMessage()
            and "CDS" in r.getMessage()
            and "cluster bad" in r.getMessage()
            for r in caplog.records
        )
        (status,) = xds.connections()
        cds = status.type("CDS")
        assert cds.state is SyncState.STALE  # the fix is sent, not acknowledged yet
        assert cds.nacks == 1
        assert cds.last_nack_message == "Proto constraint validation failed: cluster bad"
        assert cds.version_acked == good.version_info
        pusher.cancel()


@run_async
async def test_status_reports_nacked_with_envoys_message():
    xds = XdsServer(World())
    async with XdsDriver.memory(xds, node()) as ads:
        await ads.request(res.ROUTE, ["r0"])
        response = await ads.expect_response(res.ROUTE)
        await ads.nack(response, "invalid regex")
        await ads.request(res.LISTENER)  # a response after the NACK proves it was processed
        await ads.expect_response(res.LISTENER)
        rds = xds.status()["proxies"][0]["types"]["RDS"]
        assert rds["state"] == "NACKED"
        assert rds["last_nack_message"] == "invalid regex"
        assert rds["nacks"] == 1
        assert rds["last_nack_time"]
        assert xds.status()["counters"]["nacks"] == 1


@run_async
async def test_new_clusters_eds_request_with_acked_nonce_is_answered():
    world = World()
    xds = XdsServer(world)
    async with XdsDriver.memory(xds, node()) as ads:
        await ads.request_response_ack(res.CLUSTER)
        eds = await ads.request_response_ack(res.ENDPOINT, ["a"])
        world.resources[res.ENDPOINT].append(endpoints("b"))
        # As Envoy does after a CDS change: the already ACKed EDS nonce, new names.
        await ads.request(res.ENDPOINT, ["a", "b"], nonce=eds.nonce)
        response = await ads.expect_response(res.ENDPOINT)
        names = [m.cluster_name for m in unpack(response, endpoint_pb2.ClusterLoadAssignment)]
        assert names == ["a", "b"]


@run_async
async def test_generator_error_skips_that_type_and_keeps_the_stream(
    caplog: pytest.LogCaptureFixture,
):
    world = World()
    xds = XdsServer(world, debounce_after=0)
    async with asyncio.TaskGroup() as tasks, XdsDriver.memory(xds, node()) as ads:
        pusher = await started(xds, tasks)
        await ads.request_response_ack(res.CLUSTER)
        await ads.request_response_ack(res.LISTENER)
        world.fail.add(res.CLUSTER)
        world.resources[res.LISTENER] = [listener("l9")]
        with caplog.at_level(logging.ERROR, logger="pilot.xds"):
            await xds.push("both changed")
            response = await ads.expect_response(res.LISTENER)
        assert [m.name for m in unpack(response, listener_pb2.Listener)] == ["l9"]
        assert xds.counters.generate_errors == 1
        assert any("generating CDS for " + TEST_NODE_ID in r.getMessage() for r in caplog.records)
        # A type the generator fails on when first asked is owed, and sent once it recovers.
        world.fail.add(res.ROUTE)
        await ads.request(res.ROUTE, ["r0"])
        await ads.request(res.ENDPOINT, ["a"])
        await ads.expect_response(res.ENDPOINT)
        world.fail.clear()
        await xds.push("recovered")
        # Clusters are unchanged since last sent, so only the owed routes go out.
        await ads.expect_response(res.ROUTE)
        pusher.cancel()


@run_async
async def test_resources_of_the_wrong_type_are_a_generator_error():
    world = World()
    world.resources[res.CLUSTER] = [listener("not-a-cluster")]
    xds = XdsServer(world)
    async with XdsDriver.memory(xds, node()) as ads:
        await ads.request(res.CLUSTER)
        await ads.request(res.LISTENER)
        await ads.expect_response(res.LISTENER)
        assert xds.counters.generate_errors == 1


@run_async
async def test_push_reaches_only_affected_proxies():
    world = World()
    xds = XdsServer(world, debounce_after=0)
    async with (
        asyncio.TaskGroup() as tasks,
        XdsDriver.memory(xds, node()) as test,
        XdsDriver.memory(xds, node(OTHER_NODE_ID)) as other,
    ):
        pusher = await started(xds, tasks)
        await test.request_response_ack(res.LISTENER)
        await other.request_response_ack(res.LISTENER)
        world.resources[res.LISTENER] = [listener("changed")]
        await xds.push("prod only", affects=lambda p: p.namespace == "prod")
        await other.expect_response(res.LISTENER)
        await test.expect_no_response()
        pusher.cancel()


@run_async
async def test_debounce_merges_a_burst_into_one_push():
    world = World()
    xds = XdsServer(world, debounce_after=0.05, debounce_max=5)
    async with asyncio.TaskGroup() as tasks, XdsDriver.memory(xds, node()) as ads:
        pusher = await started(xds, tasks)
        await ads.request_response_ack(res.LISTENER)
        for step in range(5):
            world.resources[res.LISTENER] = [listener(f"l{step}")]
            await xds.push(f"change {step}")
        response = await ads.expect_response(res.LISTENER)
        assert [m.name for m in unpack(response, listener_pb2.Listener)] == ["l4"]
        assert (xds.counters.push_requests, xds.counters.pushes) == (5, 1)
        pusher.cancel()


@run_async
async def test_client_half_close_ends_the_stream_and_unregisters():
    xds = XdsServer(World())
    async with XdsDriver.memory(xds, node()) as ads:
        await ads.request_response_ack(res.LISTENER)
        assert len(xds.connections()) == 1
        await ads.close_send()
        await ads.expect_end()
    assert xds.connections() == []
    assert (xds.counters.connects, xds.counters.disconnects) == (1, 1)


# Over real gRPC.


class GrpcHarness:
    def __init__(self, xds: XdsServer) -> None:
        self.xds = xds
        self.server = grpc.aio.server()
        xds.add_to(self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> GrpcHarness:
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.xds.stop(grace=5)
        await self.server.stop(grace=5)


@run_async
async def test_grpc_stream_request_ack_push():
    world = World()
    xds = XdsServer(world, debounce_after=0)
    async with (
        asyncio.TaskGroup() as tasks,
        GrpcHarness(xds) as harness,
        XdsDriver.ads(harness.target, node()) as ads,
    ):
        pusher = await started(xds, tasks)
        await ads.request_response_ack(res.CLUSTER)
        await ads.request_response_ack(res.ENDPOINT, ["a"])
        world.resources[res.CLUSTER] = [cluster("a"), cluster("b")]
        world.resources[res.ENDPOINT] = [endpoints("a"), endpoints("b")]
        await xds.push("cluster b")
        cds = await ads.expect_response(res.CLUSTER)
        await ads.ack(cds)
        # Cluster a came back unchanged: Envoy keeps it warm, so no endpoints follow the CDS.
        await ads.request(res.ENDPOINT, ["a", "b"], nonce=cds.nonce)  # a stale nonce
        eds = await ads.expect_response(res.ENDPOINT)
        assert len(eds.resources) == 2  # both: the request, not a warming push before it
        await ads.ack(eds)
        (status,) = xds.connections()
        assert status.peer.startswith("ipv4:127.0.0.1:")
        pusher.cancel()


@run_async
async def test_grpc_malformed_node_id_is_invalid_argument():
    xds = XdsServer(World())
    async with (
        GrpcHarness(xds) as harness,
        XdsDriver.ads(harness.target, node("sidecar~127.0.0.1~nonamespace")) as ads,
    ):
        await ads.request(res.LISTENER)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await ads.call.read()
        assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "want 4 fields" in raised.value.details()
        assert xds.counters.rejected_streams == 1


@run_async
async def test_grpc_delta_is_unimplemented():
    xds = XdsServer(World())
    async with GrpcHarness(xds) as harness, grpc.aio.insecure_channel(harness.target) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        call = stub.DeltaAggregatedResources()

        async def write_then_read() -> None:
            await call.write(discovery_pb2.DeltaDiscoveryRequest(type_url=res.CLUSTER))
            await call.read()

        # The refusal may end the stream while the request is still being written.
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await write_then_read()
        assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED


@run_async
async def test_grpc_stop_ends_open_streams_cleanly():
    xds = XdsServer(World())
    async with GrpcHarness(xds) as harness, XdsDriver.ads(harness.target, node()) as ads:
        await ads.request_response_ack(res.LISTENER)
        await xds.stop(grace=5)
        await ads.expect_end()
        assert await ads.call.code() is grpc.StatusCode.OK
        assert xds.connections() == []
        # New streams are refused while stopping.
        async with XdsDriver.ads(harness.target, node()) as late:

            async def request_then_read() -> None:
                await late.request(res.LISTENER)
                await late.call.read()

            # The refusal may already end the stream while the request is being written.
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await request_then_read()
            assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


@run_async
async def test_a_failing_affects_predicate_pushes_rather_than_stops():
    world = World()
    xds = XdsServer(world, debounce_after=0)

    def broken(proxy: Proxy) -> bool:
        raise KeyError("bug")

    async with asyncio.TaskGroup() as tasks, XdsDriver.memory(xds, node()) as ads:
        pusher = await started(xds, tasks)
        await ads.request_response_ack(res.LISTENER)
        world.resources[res.LISTENER] = [listener("changed")]
        await xds.push("broken predicate", affects=broken)
        await ads.expect_response(res.LISTENER)
        assert not pusher.done()
        pusher.cancel()


@run_async
async def test_a_restarted_server_presents_the_same_versions():
    world = World()
    versions = []
    for _ in range(2):  # two server lifetimes over the same config
        async with XdsDriver.memory(XdsServer(world), node()) as ads:
            response = await ads.request_response_ack(res.CLUSTER)
            versions.append(response.version_info)
    assert versions[0] == versions[1]
