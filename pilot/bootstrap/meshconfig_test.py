"""The mesh config from the ConfigMap istio-system/istio: parsed, checked, watched, pushed."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from pilot.bootstrap import meshconfig
from pilot.bootstrap.server import CONFIGMAP, DiscoveryOptions, DiscoveryServer
from pilot.configstore.testing import StoreThread
from pilot.model.push_context import MeshOptions
from pilot.networking import generator
from pilot.xds.testing import node, run_async
from pkg.config import loader
from pkg.config.mesh import MeshConfigError, parse_mesh_config
from pkg.kube.client import ConfigClient
from pkg.xds.testing import XdsDriver, unpack

NODE = "sidecar~10.9.0.2~app.default~default.svc.cluster.local"
META = {"NAMESPACE": "default", "LABELS": {"app": "app"}, "INTERCEPTION_MODE": "REDIRECT"}


def configmap(mesh: str | None, name: str = "istio", namespace: str = "istio-system"):
    data = {} if mesh is None else {"mesh": mesh}
    return loader.load_object(
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": name, "namespace": namespace}, "data": data},
        source="test",
    )  # fmt: skip


def test_the_configmaps_mesh_key_with_pilots_own_flags():
    fallback = MeshOptions(domain_suffix="example.local", mixer_check_cache=False)
    options = meshconfig.from_configmap(
        configmap("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nconnectTimeout: 2s"), fallback
    )
    assert options.mesh_config.outbound_traffic_policy.mode == 0  # REGISTRY_ONLY
    assert options.connect_timeout == 2.0
    assert options.domain_suffix == "example.local"
    assert options.mixer_check_cache is False


@pytest.mark.parametrize(
    ("mesh", "error"),
    [
        (None, "ConfigMap istio-system/istio: has no 'mesh' key"),
        ("outboundTrafficPolicy: {mode: SOMETIMES}", "ConfigMap istio-system/istio key 'mesh': "),
        ("[a, list]", "a mesh config is a mapping, got list"),
        ("mixerCheckServer: mixer:9091", "names a Mixer, but Pilot has no --mixer-filter-wasm"),
        ("noSuchField: 1", "noSuchField"),
    ],
)
def test_an_invalid_mesh_config_is_refused_with_where_and_why(mesh, error):
    with pytest.raises(MeshConfigError, match=None) as raised:
        meshconfig.from_configmap(configmap(mesh), MeshOptions())
    assert error in str(raised.value)


def test_only_istio_in_istiods_namespace_is_the_mesh_config():
    assert meshconfig.is_mesh_configmap(configmap(""))
    assert not meshconfig.is_mesh_configmap(configmap("", name="istio-sidecar-injector"))
    assert not meshconfig.is_mesh_configmap(configmap("", namespace="default"))


def _catch_all(response) -> str:
    listeners = {x.name: x for x in unpack(response, listener_pb2.Listener)}
    chain = next(
        c
        for c in listeners["virtualOutbound"].filter_chains
        if c.name == "virtualOutbound-catchall-tcp"
    )
    proxy = tcp_proxy_pb2.TcpProxy()
    chain.filters[0].typed_config.Unpack(proxy)
    return proxy.cluster


def test_a_configmap_change_is_pushed_and_a_bad_one_keeps_the_config(tmp_path):
    """ALLOW_ANY from the file, REGISTRY_ONLY from the ConfigMap, a broken edit ignored,
    the ConfigMap deleted: the file's again. One Pilot, never restarted."""
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario():
            async with ConfigClient(store.url) as client:
                namespace = loader.load_object(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
                    source="test",
                )
                await client.create(namespace)
                file_mesh = parse_mesh_config("outboundTrafficPolicy: {mode: ALLOW_ANY}")
                server = DiscoveryServer(
                    DiscoveryOptions(
                        config_store=store.url,
                        grpc_address="127.0.0.1:0",
                        http_address="127.0.0.1:0",
                        mesh=MeshOptions(mesh_config=file_mesh),
                        debounce_after=0.0,
                    )
                )
                task = asyncio.create_task(server.run())
                try:
                    async with asyncio.timeout(10):
                        await server.ready.wait()
                    async with XdsDriver.ads(server.grpc_address, node(NODE, metadata=META)) as ads:
                        first = await ads.request_response_ack(generator.LISTENER)
                        assert _catch_all(first) == "PassthroughCluster"

                        await client.create(
                            configmap("outboundTrafficPolicy: {mode: REGISTRY_ONLY}")
                        )
                        pushed = await ads.expect_response(generator.LISTENER)
                        assert _catch_all(pushed) == "BlackHoleCluster"
                        await ads.ack(pushed)

                        current = await client.get(CONFIGMAP, "istio", "istio-system")
                        assert current is not None
                        body = {
                            **(current.body or {}),
                            "data": {"mesh": "outboundTrafficPolicy: 7"},
                        }
                        broken = loader.load_object({**current.to_dict(), **body}, source="test")
                        await client.update(broken)
                        await ads.expect_no_response(timeout=0.5)
                        assert server.mesh.mesh_config.outbound_traffic_policy.mode == 0

                        await client.delete(CONFIGMAP, "istio", "istio-system")
                        pushed = await ads.expect_response(generator.LISTENER)
                        assert _catch_all(pushed) == "PassthroughCluster"
                        await ads.ack(pushed)
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

        scenario()
