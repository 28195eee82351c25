"""A Pod's readiness, from its status to Pilot's instances: the local platform's controllers and
Pilot's Kubernetes registry against one embedded store, every step over real watch streams.

The kubelet's part (writing the pod's address and Ready condition) is done here through the
`status` subresource, as the kubelet writes it; the controllers make the EndpointSlices and
Endpoints; the registry reads them with the pods.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from kubernetes.aio import client

from pilot.configstore.server import ConfigStoreServer, Options
from pilot.registry.kube.client import OfficialClient
from pilot.registry.kube.controller import KubeOptions, KubeRegistry
from pilot.registry.kube.testing import api_client, pod_body, service_body
from pkg.testing.aio import run_async
from pkg.testing.wait import eventually
from tools.local import endpoints
from tools.local.controllers import ControllerManager

REVIEWS = "reviews.default.svc.cluster.local"
NODE = "local"


@contextlib.asynccontextmanager
async def platform(tmp_path) -> AsyncIterator[tuple[ConfigStoreServer, KubeRegistry]]:
    server = ConfigStoreServer(options=Options(port=0, db=tmp_path / "db"))
    await server.start()
    apis = [api_client(server.url), api_client(server.url)]
    manager = ControllerManager(apis[0], NODE)
    registry = KubeRegistry(
        client=OfficialClient(apis[1]), options=KubeOptions(backoff_min=0.05, backoff_max=0.2)
    )
    tasks = [asyncio.create_task(manager.run()), asyncio.create_task(registry.run())]
    try:
        await eventually(manager.ready.is_set, what="controllers synced")
        await eventually(registry.has_synced, what="registry synced")
        yield server, registry
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for api in apis:
            await api.close()
        await server.stop()


def status(ip: str, ready: bool) -> dict[str, Any]:
    flag = "True" if ready else "False"
    return {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [
                {"type": "Ready", "status": flag},
                {"type": "ContainersReady", "status": flag},
            ],
        }
    }


async def slice_conditions(discovery: client.DiscoveryV1Api) -> dict[str, dict[str, Any]]:
    slices = await discovery.list_namespaced_endpoint_slice(
        "default", label_selector=f"{endpoints.SERVICE_NAME}=reviews"
    )
    return {
        e.target_ref.name: {
            "ready": e.conditions.ready,
            "serving": e.conditions.serving,
            "terminating": e.conditions.terminating,
        }
        for s in slices.items
        for e in s.endpoints or []
    }


async def endpoints_ips(core: client.CoreV1Api) -> tuple[list[str], list[str]]:
    """The Endpoints object's ready and not-ready addresses."""
    listed = await core.read_namespaced_endpoints("reviews", "default")
    subsets = listed.subsets or []
    return (
        sorted(a.ip for s in subsets for a in s.addresses or []),
        sorted(a.ip for s in subsets for a in s.not_ready_addresses or []),
    )


def instances(registry: KubeRegistry) -> list[tuple[str, str]]:
    return sorted(
        (e.address, e.labels.get("version", "")) for e in registry.instances(REVIEWS, 9080)
    )


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def _names(conditions: Awaitable[dict[str, Any]]) -> set[str]:
    return set(await conditions)


@run_async(timeout=90)
async def test_a_pods_readiness_reaches_pilot_through_its_endpointslice(tmp_path):
    async with platform(tmp_path) as (server, registry):
        writer = api_client(server.url)
        core, discovery = client.CoreV1Api(writer), client.DiscoveryV1Api(writer)
        try:
            await core.create_namespaced_service(
                "default",
                service_body("reviews", [{"name": "http", "port": 9080, "targetPort": 9080}]),
            )
            for name, version in (("reviews-v1-a", "v1"), ("reviews-v2-b", "v2")):
                body = pod_body(name, {"app": "reviews", "version": version}, "bookinfo-reviews")
                body["spec"]["nodeName"] = NODE
                await core.create_namespaced_pod("default", body)
            # Without an address a pod is no endpoint at all.
            await eventually(lambda: registry.get_service(REVIEWS) is not None)
            assert instances(registry) == []

            # The kubelet reports both running and ready: both serve.
            await core.patch_namespaced_pod_status(
                "reviews-v1-a", "default", status("10.1.0.4", True)
            )
            await core.patch_namespaced_pod_status(
                "reviews-v2-b", "default", status("10.1.0.5", True)
            )
            await eventually(
                lambda: instances(registry) == [("10.1.0.4", "v1"), ("10.1.0.5", "v2")],
                what="both pods serving",
            )
            conditions = await slice_conditions(discovery)
            assert conditions["reviews-v2-b"] == {
                "ready": True,
                "serving": True,
                "terminating": False,
            }
            # The Endpoints object is written beside the slice: (ready, not ready).
            both = (["10.1.0.4", "10.1.0.5"], [])
            await eventually(lambda: _is(endpoints_ips(core), both), what="Endpoints: both")

            # v2 stops being ready: its endpoint is kept, not ready, and Pilot drops it.
            await core.patch_namespaced_pod_status(
                "reviews-v2-b", "default", status("10.1.0.5", False)
            )
            await eventually(lambda: instances(registry) == [("10.1.0.4", "v1")], what="v2 out")
            conditions = await slice_conditions(discovery)
            assert conditions["reviews-v2-b"]["ready"] is False
            one = (["10.1.0.4"], ["10.1.0.5"])
            await eventually(lambda: _is(endpoints_ips(core), one), what="Endpoints: v2 not ready")

            # Ready again: back in Pilot's view.
            await core.patch_namespaced_pod_status(
                "reviews-v2-b", "default", status("10.1.0.5", True)
            )
            await eventually(lambda: len(instances(registry)) == 2, what="v2 back")

            # A pod that goes: its endpoint goes with it.
            await core.delete_namespaced_pod("reviews-v1-a", "default", grace_period_seconds=0)
            await eventually(lambda: instances(registry) == [("10.1.0.5", "v2")], what="v1 gone")
            # (Pilot drops it as soon as the pod is gone; the controller's slice write follows.)
            await eventually(
                lambda: _is(_names(slice_conditions(discovery)), {"reviews-v2-b"}),
                what="the slice without v1",
            )
        finally:
            await writer.close()


def test_a_named_target_port_is_resolved_per_pod():
    service = {
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "web"}],
        }
    }

    def pod(name: str, ip: str, port: int) -> dict[str, Any]:
        return {
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": f"uid-{name}",
                "labels": {"app": "web"},
            },
            "spec": {
                "containers": [{"name": "app", "ports": [{"name": "web", "containerPort": port}]}]
            },
            **status(ip, True),
        }

    slices = endpoints.slices_of(service, [pod("a", "10.1.0.1", 8080), pod("b", "10.1.0.2", 9090)])
    assert sorted((s["ports"][0]["port"], s["endpoints"][0]["addresses"][0]) for s in slices) == [
        (8080, "10.1.0.1"),
        (9090, "10.1.0.2"),
    ]
