"""pilot-discovery with `--registries Kubernetes,ServiceEntry`: Bookinfo's Kubernetes objects
and a ServiceEntry in one aggregate, read from a real config store through a kubeconfig."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from kubernetes.aio import client

from pilot.bootstrap.registries import PlatformOptions
from pilot.bootstrap.server import DiscoveryOptions, DiscoveryServer
from pilot.cmd.discovery import parse_args
from pilot.configstore.testing import StoreThread
from pilot.networking import generator
from pilot.networking.testing import BOOKINFO
from pilot.registry.kube.testing import api_client, pod_body, slice_body
from pilot.registry.provider import Provider
from pilot.xds.testing import node, run_async
from pkg.config import loader
from pkg.kube.client import ConfigClient
from pkg.kube.kubeconfig import write_kubeconfig
from pkg.testing.wait import eventually
from pkg.xds.testing import XdsDriver, unpack

NODE = "sidecar~10.1.0.2~productpage-v1-abc.default~default.svc.cluster.local"
META = {"NAMESPACE": "default", "LABELS": {"app": "productpage", "version": "v1"}}
REVIEWS_V3 = "outbound|9080||reviews.default.svc.cluster.local"
EXTERNAL = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: books-api}
spec:
  hosts: [www.googleapis.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  location: MESH_EXTERNAL
  resolution: DNS
"""


@contextlib.asynccontextmanager
async def discovery(store_url: str, kubeconfig: str):
    server = DiscoveryServer(
        DiscoveryOptions(
            config_store=store_url,
            grpc_address="127.0.0.1:0",
            http_address="127.0.0.1:0",
            registries=(Provider.KUBERNETES, Provider.SERVICE_ENTRY),
            platforms=PlatformOptions(kubeconfig=kubeconfig),
        )
    )
    task = asyncio.create_task(server.run())
    try:
        async with asyncio.timeout(30):
            await server.ready.wait()

            # /ready says 200 once every registry has read its platform, as for a rollout.
            async def ready() -> bool:
                return await asyncio.to_thread(_ready, server.http_address) == 200

            await eventually(ready, timeout=30, interval=0.05, what="/ready answering 200")
        yield server
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _ready(address: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{address}/ready", timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def _addresses(response) -> set[str]:
    found = set()
    for assignment in unpack(response, endpoint_pb2.ClusterLoadAssignment):
        if assignment.cluster_name == REVIEWS_V3:
            for group in assignment.endpoints:
                for lb in group.lb_endpoints:
                    found.add(lb.endpoint.address.socket_address.address)
    return found


def test_kubernetes_and_service_entries_in_one_aggregate(tmp_path):
    with StoreThread(tmp_path / "store.db") as store:
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, store.url)

        @run_async(timeout=60)
        async def scenario():
            async with ConfigClient(store.url) as config:
                for resource in (
                    *loader.load_file(BOOKINFO / "platform/kube/bookinfo.yaml"),
                    *loader.load_text(EXTERNAL),
                ):
                    await config.apply(resource)
            writer = api_client(store.url)
            core, discovery_api = client.CoreV1Api(writer), client.DiscoveryV1Api(writer)
            labels = {"app": "reviews", "version": "v3", "security.istio.io/tlsMode": "istio"}
            await core.create_namespaced_pod(
                "default", pod_body("reviews-v3-x", labels, "bookinfo-reviews")
            )
            endpoints = [("10.1.0.6", "reviews-v3-x", True)]
            await discovery_api.create_namespaced_endpoint_slice(
                "default", slice_body("reviews-a", "reviews", "http", 9080, endpoints, "default")
            )
            try:
                async with (
                    discovery(store.url, str(kubeconfig)) as server,
                    XdsDriver.ads(server.grpc_address, node(NODE, metadata=META)) as ads,
                ):
                    clusters = await ads.request_response_ack(generator.CLUSTER)
                    names = {c.name for c in unpack(clusters, cluster_pb2.Cluster)}
                    assert REVIEWS_V3 in names  # from the Kubernetes Service
                    assert "outbound|443||www.googleapis.com" in names  # from the ServiceEntry
                    eds = await ads.request_response_ack(generator.ENDPOINT, [REVIEWS_V3])
                    assert _addresses(eds) == {"10.1.0.6"}

                    # The pod stops being ready: Pilot pushes its endpoint away.
                    current = await discovery_api.read_namespaced_endpoint_slice(
                        "reviews-a", "default"
                    )
                    body = slice_body(
                        "reviews-a",
                        "reviews",
                        "http",
                        9080,
                        [(*endpoints[0][:2], False)],
                        "default",
                    )
                    body["metadata"]["resourceVersion"] = current.metadata.resource_version
                    await discovery_api.replace_namespaced_endpoint_slice(
                        "reviews-a", "default", body
                    )
                    pushed = await ads.expect_response(generator.ENDPOINT)
                    assert _addresses(pushed) == set()

                    registryz = await asyncio.to_thread(
                        urllib.request.urlopen, f"http://{server.http_address}/debug/registryz"
                    )
                    report = json.load(registryz)
                    providers = [r["provider"] for r in report["registries"]]
                    assert providers == ["Kubernetes", "ServiceEntry"]
            finally:
                await writer.close()

        scenario()


def test_kubernetes_needs_credentials(tmp_path, monkeypatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    with pytest.raises(SystemExit):
        parse_args(["--registries", "Kubernetes"])
    assert "registry Kubernetes needs --kubeconfig" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--registries", "Kubernetes", "--kubeconfig", str(tmp_path / "missing")])
    assert "no such file" in capsys.readouterr().err
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, "http://127.0.0.1:1")
    options, _ = parse_args(
        [
            "--registries",
            "Kubernetes,ServiceEntry",
            "--kubeconfig",
            str(kubeconfig),
            "--domain",
            "corp",
        ]
    )
    assert options.registries == (Provider.KUBERNETES, Provider.SERVICE_ENTRY)
    assert (options.platforms.kubeconfig, options.platforms.domain) == (str(kubeconfig), "corp")
