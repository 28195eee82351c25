"""The Kubernetes registry through the official client against the embedded config store:
real lists, real watch streams, a real 410 when history has moved on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from kubernetes.aio import client

from pilot.configstore.server import ConfigStoreServer, Options
from pilot.model.discovery import Event, InstancesEvent, ServiceEvent, ServiceRegistry
from pilot.registry import conformance
from pilot.registry.kube.client import OfficialClient
from pilot.registry.kube.controller import KubeOptions, KubeRegistry
from pilot.registry.kube.testing import (
    CuttableProxy,
    KubeDriver,
    api_client,
    pod_body,
    service_body,
    slice_body,
)
from pkg.testing.aio import run_async
from pkg.testing.wait import eventually

REVIEWS = "reviews.default.svc.cluster.local"
FAST = KubeOptions(backoff_min=0.05, backoff_max=0.2)


@contextlib.asynccontextmanager
async def store(tmp_path, history: int = 10_000) -> AsyncIterator[ConfigStoreServer]:
    server = ConfigStoreServer(options=Options(port=0, db=tmp_path / "db", history=history))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running(registry: KubeRegistry) -> AsyncIterator[list]:
    events: list = []

    async def record(event) -> None:
        events.append(event)

    registry.append_service_handler(record)
    task = asyncio.create_task(registry.run())
    try:
        await eventually(registry.has_synced, what="registry synced")
        yield events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def addresses(registry: KubeRegistry, port: int = 9080) -> list[str]:
    return sorted(e.address for e in registry.instances(REVIEWS, port))


@run_async(timeout=120)
async def test_conformance(tmp_path):
    async with store(tmp_path) as server:

        @contextlib.asynccontextmanager
        async def factory():
            writer = api_client(server.url)
            registry = KubeRegistry(client=OfficialClient(api_client(server.url)), options=FAST)
            try:
                yield registry, KubeDriver(writer)
            finally:
                # Each check starts from no services: the driver's leave nothing behind.
                core = client.CoreV1Api(writer)
                for svc in (await core.list_namespaced_service("conformance")).items:
                    await core.delete_namespaced_service(svc.metadata.name, "conformance")
                discovery = client.DiscoveryV1Api(writer)
                await discovery.delete_collection_namespaced_endpoint_slice("conformance")
                await writer.close()

        _check: ServiceRegistry = KubeRegistry(client=OfficialClient(api_client(server.url)))
        await _check._client.close()
        await conformance.check_all(factory)


@run_async(timeout=60)
async def test_services_slices_and_pod_readiness_as_they_change(tmp_path):
    async with store(tmp_path) as server:
        writer = api_client(server.url)
        core, discovery = client.CoreV1Api(writer), client.DiscoveryV1Api(writer)
        registry = KubeRegistry(client=OfficialClient(api_client(server.url)), options=FAST)
        try:
            async with running(registry) as events:
                # A Service: its hostname, its cluster IP, its port's protocol from the name.
                await core.create_namespaced_service(
                    "default", service_body("reviews", [{"name": "http", "port": 9080}])
                )
                await eventually(lambda: registry.get_service(REVIEWS) is not None)
                service = registry.get_service(REVIEWS)
                assert service.address.startswith("10.96.")
                assert [(p.name, p.number, p.protocol.value) for p in service.ports] == [
                    ("http", 9080, "HTTP")
                ]
                # Its pods and their EndpointSlice: instances with the pods' labels and accounts.
                for name, version in (("reviews-v1-a", "v1"), ("reviews-v2-b", "v2")):
                    labels = {"app": "reviews", "version": version}
                    await core.create_namespaced_pod(
                        "default", pod_body(name, labels, account="bookinfo-reviews")
                    )
                endpoints = [("10.1.0.4", "reviews-v1-a", True), ("10.1.0.5", "reviews-v2-b", True)]
                await discovery.create_namespaced_endpoint_slice(
                    "default",
                    slice_body("reviews-x1", "reviews", "http", 9080, endpoints, "default"),
                )
                await eventually(lambda: addresses(registry) == ["10.1.0.4", "10.1.0.5"])
                v2 = next(e for e in registry.instances(REVIEWS, 9080) if e.address == "10.1.0.5")
                assert (v2.labels["version"], v2.service_account) == ("v2", "bookinfo-reviews")
                await eventually(lambda: any(isinstance(e, InstancesEvent) for e in events))

                # A pod that stops being ready: its endpoint goes, the other stays.
                endpoints[1] = ("10.1.0.5", "reviews-v2-b", False)
                await discovery.replace_namespaced_endpoint_slice(
                    "reviews-x1",
                    "default",
                    {
                        **slice_body("reviews-x1", "reviews", "http", 9080, endpoints, "default"),
                        "metadata": {
                            **slice_body("reviews-x1", "reviews", "http", 9080, [], "default")[
                                "metadata"
                            ],
                            "resourceVersion": (
                                await discovery.read_namespaced_endpoint_slice(
                                    "reviews-x1", "default"
                                )
                            ).metadata.resource_version,
                        },
                    },
                )
                await eventually(lambda: addresses(registry) == ["10.1.0.4"])

                # A pod's labels change: the instance follows (re-read through the pod).
                await core.patch_namespaced_pod(
                    "reviews-v1-a", "default", {"metadata": {"labels": {"version": "v9"}}}
                )
                await eventually(
                    lambda: (
                        [e.labels.get("version") for e in registry.instances(REVIEWS, 9080)]
                        == ["v9"]
                    )
                )

                # The Service changes its port's protocol: an UPDATE; then it goes: a DELETE.
                events.clear()
                await core.patch_namespaced_service(
                    "reviews",
                    "default",
                    {"spec": {"ports": [{"port": 9080, "appProtocol": "kubernetes.io/h2c"}]}},
                )
                await eventually(
                    lambda: registry.get_service(REVIEWS).ports[0].protocol.value == "HTTP2"
                )
                await eventually(
                    lambda: any(
                        isinstance(e, ServiceEvent) and e.event is Event.UPDATE for e in events
                    ),
                    what="the UPDATE told",
                )
                await discovery.delete_namespaced_endpoint_slice("reviews-x1", "default")
                await eventually(lambda: addresses(registry) == [])
                await core.delete_namespaced_service("reviews", "default")
                await eventually(lambda: registry.get_service(REVIEWS) is None)
                await eventually(
                    lambda: any(
                        isinstance(e, ServiceEvent) and e.event is Event.DELETE for e in events
                    ),
                    what="the DELETE told",
                )
        finally:
            await writer.close()


@run_async(timeout=60)
async def test_a_watch_that_comes_back_after_history_moved_on_lists_again(tmp_path):
    # A store that keeps little history: what happened while the registry was cut off is
    # beyond it, so its watch gets 410 Gone and it must list again to see the deletion.
    async with store(tmp_path, history=5) as server:
        writer = api_client(server.url)
        core = client.CoreV1Api(writer)
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        try:
            await core.create_namespaced_service(
                "default", service_body("reviews", [{"name": "http", "port": 9080}])
            )
            async with CuttableProxy(host, int(port)) as network:
                reader = OfficialClient(api_client(network.url))
                registry = KubeRegistry(client=reader, options=FAST)
                async with running(registry) as events:
                    await eventually(lambda: registry.get_service(REVIEWS) is not None)
                    network.cut()
                    await eventually(lambda: registry.status().state == "unreachable")
                    await core.delete_namespaced_service("reviews", "default")
                    for index in range(10):  # more writes than the store remembers
                        await core.create_namespaced_service(
                            "default", service_body(f"filler-{index}", [{"port": 80}])
                        )
                    assert registry.get_service(REVIEWS) is not None  # the last view, kept
                    network.restore()
                    await eventually(lambda: registry.get_service(REVIEWS) is None, timeout=15)
                    filler = "filler-9.default.svc.cluster.local"
                    await eventually(lambda: registry.get_service(filler) is not None)
                    assert registry.status().relists >= 1
                    await eventually(lambda: registry.status().state == "synced")
                    # Handlers run after the registry's view changed: wait for them too.
                    await eventually(
                        lambda: any(
                            isinstance(e, ServiceEvent)
                            and e.event is Event.DELETE
                            and e.service.hostname == REVIEWS
                            for e in events
                        ),
                        what="the DELETE told",
                    )
        finally:
            await writer.close()


@run_async(timeout=60)
async def test_endpoints_are_read_where_a_cluster_serves_no_endpointslices(tmp_path):
    from pkg.config.kinds import ALL, KindSet

    without_slices = KindSet(s for s in ALL if s.kind != "EndpointSlice")
    server = ConfigStoreServer(options=Options(port=0, db=tmp_path / "db"), kinds=without_slices)
    await server.start()
    writer = api_client(server.url)
    try:
        core = client.CoreV1Api(writer)
        await core.create_namespaced_service(
            "default", service_body("reviews", [{"name": "http", "port": 9080, "targetPort": 9081}])
        )
        await core.create_namespaced_pod("default", pod_body("reviews-v1-a", {"version": "v1"}))
        await core.create_namespaced_endpoints(
            "default",
            {
                "metadata": {"name": "reviews"},
                "subsets": [
                    {
                        "addresses": [
                            {
                                "ip": "10.1.0.4",
                                "targetRef": {
                                    "kind": "Pod",
                                    "name": "reviews-v1-a",
                                    "namespace": "default",
                                },
                            }
                        ],
                        "notReadyAddresses": [{"ip": "10.1.0.9"}],
                        "ports": [{"name": "http", "port": 9081}],
                    }
                ],
            },
        )
        registry = KubeRegistry(client=OfficialClient(api_client(server.url)), options=FAST)
        async with running(registry):
            await eventually(lambda: addresses(registry) == ["10.1.0.4"])
            (endpoint,) = registry.instances(REVIEWS, 9080)
            assert (endpoint.port, endpoint.labels) == (9081, {"version": "v1"})
            assert registry.status().endpoints_from == "endpoints"
    finally:
        await writer.close()
        await server.stop()


def _localities(registry: KubeRegistry) -> dict[str, str]:
    return {e.address: e.locality for e in registry.instances(REVIEWS, 9080)}


@run_async(timeout=120)
async def test_a_pods_locality_is_its_nodes_unless_its_own_label_says(tmp_path):
    async with store(tmp_path) as server:
        writer = api_client(server.url)
        core, discovery = client.CoreV1Api(writer), client.DiscoveryV1Api(writer)
        registry = KubeRegistry(client=OfficialClient(api_client(server.url)), options=FAST)
        try:
            zone = {"topology.kubernetes.io/region": "us-east1",
                    "topology.kubernetes.io/zone": "us-east1-b"}  # fmt: skip
            await core.create_node({"metadata": {"name": "node-a", "labels": zone}})
            async with running(registry):
                await core.create_namespaced_service(
                    "default", service_body("reviews", [{"name": "http", "port": 9080}])
                )
                for name, labels in (("reviews-v1-a", {}), ("reviews-v2-b", {
                        "istio-locality": "eu-west1.eu-west1-a"})):  # fmt: skip
                    body = pod_body(name, {"app": "reviews", **labels})
                    body["spec"]["nodeName"] = "node-a"
                    await core.create_namespaced_pod("default", body)
                endpoints = [("10.1.0.4", "reviews-v1-a", True), ("10.1.0.5", "reviews-v2-b", True)]
                await discovery.create_namespaced_endpoint_slice(
                    "default",
                    slice_body("reviews-x1", "reviews", "http", 9080, endpoints, "default"),
                )
                await eventually(
                    lambda: (
                        _localities(registry)
                        == {"10.1.0.4": "us-east1/us-east1-b/", "10.1.0.5": "eu-west1/eu-west1-a"}
                    )
                )
                # The node's labels change: its pods move with it, the labelled one stays.
                zone["topology.istio.io/subzone"] = "rack7"
                await core.patch_node("node-a", {"metadata": {"labels": zone}})
                await eventually(
                    lambda: (
                        _localities(registry)
                        == {
                            "10.1.0.4": "us-east1/us-east1-b/rack7",
                            "10.1.0.5": "eu-west1/eu-west1-a",
                        }
                    )
                )
        finally:
            await writer.close()
