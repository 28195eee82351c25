"""The Mixer filters in one real Envoy, configured over ADS, calling the real mixs.

Not a whole mesh: a fake ADS server hands a real Envoy listeners with the Mixer filters (the
HTTP one, and the TCP one in front of a TCP echo server), so a test can push a filter config
with a mistake and watch Envoy refuse it, or drive a TCP connection byte by byte.
"""

import asyncio
import contextlib
import json
import pathlib
from typing import Any

import aiohttp
from aiohttp import web
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2

# Imported so json_format resolves the @types below.
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.filters.network.wasm.v3 import wasm_pb2 as network_wasm_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families

from mixer.server.testing import TELEMETRY, apply, running_mixer
from pilot.configstore.testing import StoreThread
from pkg.config import loader
from pkg.kube.client import ConfigClient
from pkg.testing.aio import run_async
from pkg.testing.envoy import EnvoyProcess
from proxy.agent.testing import CLUSTER_TYPE, LISTENER_TYPE, FakeAds, FakeAdsOptions, eventually
from proxy.extensions.mixer import module
from tests.e2e.meshtest import loopback_subnet

IP = f"{loopback_subnet(11)}.1"
MIXER_CLUSTER = "outbound|9091||mixs"
BACKEND_CLUSTER = "outbound|9080||backend.default.svc.cluster.local"
ECHO_CLUSTER = "outbound|7000||echo.default.svc.cluster.local"
HTTP_PORT, TCP_PORT = 18080, 18070
DENY_TCP = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: denytcp, namespace: istio-system}
spec:
  compiledAdapter: denier
  params: {status: {code: 7, message: no tcp for you}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: denytcp, namespace: istio-system}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: denytcp, namespace: istio-system}
spec:
  match: context.protocol == "tcp" && source.labels["app"] == "intruder"
  actions: [{handler: denytcp, instances: [denytcp]}]
"""


def _attributes(values: dict) -> dict:
    out = {}
    for name, value in values.items():
        if isinstance(value, dict):
            out[name] = {"stringMapValue": {"entries": value}}
        else:
            out[name] = {"stringValue": value}
    return {"attributes": out}


def http_config(policy: str = "FAIL_CLOSE", **extra) -> dict:
    return {
        "transport": {
            "checkCluster": MIXER_CLUSTER,
            "reportCluster": MIXER_CLUSTER,
            "networkFailPolicy": {"policy": policy},
        },
        "defaultDestinationService": "default",
        "serviceConfigs": {"default": {}},
        "mixerAttributes": _attributes(
            {
                "context.reporter.kind": "inbound",
                "context.reporter.uid": "kubernetes://backend-v1.default",
                "destination.workload.name": "backend-v1",
                "destination.labels": {"app": "ratings", "version": "v1"},
            }
        ),
        **extra,
    }


def tcp_config(app: str) -> dict:
    return {
        "transport": {"checkCluster": MIXER_CLUSTER, "reportCluster": MIXER_CLUSTER},
        "mixerAttributes": _attributes(
            {
                "context.reporter.kind": "inbound",
                "context.reporter.uid": "kubernetes://echo-v1.default",
                "destination.workload.name": "echo-v1",
                "destination.service.name": "echo",
                "source.labels": {"app": app},
            }
        ),
        "reportInterval": "1s",
    }


def _wasm(root_id: str, config: dict | str) -> dict:
    return {
        "name": root_id,
        "root_id": root_id,
        "vm_config": {
            "vm_id": "mixer",
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(module.module_path())}},
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": config if isinstance(config, str) else json.dumps(config),
        },
    }


def http_listener(config: dict | str) -> listener_pb2.Listener:
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "http",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "backend",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": BACKEND_CLUSTER}}],
                }
            ]
        },
        "http_filters": [
            {
                "name": "mixer",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": _wasm("mixer", config),
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    }
    return _listener("http", HTTP_PORT, [{"name": "hcm", "typed_config": manager}])


def tcp_listener(app: str) -> listener_pb2.Listener:
    filters = [
        {
            "name": "mixer",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                "config": _wasm("mixer_tcp", tcp_config(app)),
            },
        },
        {
            "name": "tcp",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": "tcp",
                "cluster": ECHO_CLUSTER,
            },
        },
    ]
    return _listener("tcp", TCP_PORT, filters)


def _listener(name: str, port: int, filters: list) -> listener_pb2.Listener:
    return json_format.ParseDict(
        {
            "name": name,
            "address": {"socket_address": {"address": IP, "port_value": port}},
            "filter_chains": [{"filters": filters}],
        },
        listener_pb2.Listener(),
    )


def cluster(name: str, port: int, *, http2: bool = False, address: str = IP) -> cluster_pb2.Cluster:
    spec = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": address, "port_value": port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if http2:
        spec["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return json_format.ParseDict(spec, cluster_pb2.Cluster())


def bootstrap(ads_address: str) -> dict:
    host, port = ads_address.rsplit(":", 1)
    return {
        "node": {
            "id": "sidecar~127.0.0.1~backend-v1.default~default.svc.cluster.local",
            "cluster": "backend",
        },
        "admin": {"address": {"socket_address": {"address": IP, "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}],
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {
            "clusters": [
                json_format.MessageToDict(
                    cluster("xds", int(port), http2=True), preserving_proto_field_name=True
                )
                | {
                    "load_assignment": {
                        "cluster_name": "xds",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": host,
                                                    "port_value": int(port),
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    }
                }
            ]
        },
    }


class Rig:
    """mixs on a real config store, an HTTP backend, a TCP echo server, a fake ADS server and
    the real Envoy it configures."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.tmp = tmp

    async def __aenter__(self) -> "Rig":
        self._stack = contextlib.AsyncExitStack()
        await self._stack.__aenter__()
        try:
            await self._start(self._stack)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.__aexit__(*exc)

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        self.store = stack.enter_context(StoreThread(self.tmp / "store.db"))
        await apply(self.store.url, TELEMETRY)
        self.mixer = await stack.enter_async_context(running_mixer(self.store.url))
        mixer_host, mixer_port = self.mixer.grpc_address.rsplit(":", 1)
        backend = web.AppRunner(self._backend_app())
        await backend.setup()
        stack.push_async_callback(backend.cleanup)
        await web.TCPSite(backend, IP, 0).start()
        backend_port = backend.addresses[0][1]
        echo = await asyncio.start_server(self._echo_client, IP, 0)
        stack.push_async_callback(echo.wait_closed)
        stack.callback(echo.close)
        echo_port = echo.sockets[0].getsockname()[1]
        self.clusters = [
            cluster(MIXER_CLUSTER, int(mixer_port), http2=True, address=mixer_host),
            cluster(BACKEND_CLUSTER, backend_port),
            cluster(ECHO_CLUSTER, echo_port),
        ]
        self.ads = FakeAds(
            options=FakeAdsOptions(
                host=IP,
                resources={
                    CLUSTER_TYPE: self.clusters,
                    LISTENER_TYPE: [http_listener(http_config()), tcp_listener("client")],
                },
            )
        )
        await self.ads.start()
        stack.push_async_callback(self.ads.stop)
        self.envoy = EnvoyProcess(bootstrap(self.ads.address), self.tmp / "envoy")
        self.envoy.start()
        stack.callback(self.envoy.stop)
        await self.envoy.wait_listener("http")
        await self.envoy.wait_listener("tcp")

    def _backend_app(self) -> web.Application:
        async def hello(_: web.Request) -> web.Response:
            return web.Response(text="backend\n")

        app = web.Application()
        app.router.add_get("/{tail:.*}", hello)
        return app

    async def _echo_client(self, reader, writer) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def get(self, path: str = "/") -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{IP}:{HTTP_PORT}{path}") as response,
        ):
            return response.status, await response.text()

    async def metric(self, name: str, **labels: str) -> float:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{self.mixer.metrics_address}/metrics") as response,
        ):
            text = await response.text()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


def test_a_bad_filter_config_is_nacked_and_the_old_one_kept(tmp_path):
    @run_async(timeout=90)
    async def scenario():
        async with Rig(tmp_path) as rig:
            assert await rig.get("/ok") == (200, "backend\n")
            accepted = rig.ads.requests_of(LISTENER_TYPE)[-1].version_info
            for bad, why in (
                ("{not json", "config is not valid JSON"),
                (
                    json.dumps(http_config(policy="FAIL_SOMETIMES")),
                    "transport.networkFailPolicy.policy: must be FAIL_OPEN or FAIL_CLOSE",
                ),
            ):
                seen = len(rig.ads.requests_of(LISTENER_TYPE))
                rig.ads.set_resources(LISTENER_TYPE, [http_listener(bad), tcp_listener("client")])

                def nacked(seen=seen):
                    later = rig.ads.requests_of(LISTENER_TYPE)[seen:]
                    return next((r for r in later if r.HasField("error_detail")), None)

                await eventually(nacked, what="a NACK of the bad listener")
                request = nacked()
                assert request.version_info == accepted  # still the last good version
                assert "http" in request.error_detail.message
                # The filter said why in Envoy's log; the old listener keeps serving.
                assert why in rig.envoy.log_path.read_text(errors="replace")
                assert await rig.get("/still") == (200, "backend\n")
            dump = await rig.envoy.config_dump("dynamic_listeners")
            (http,) = [c for c in dump["configs"] if c.get("name") == "http"]
            # Envoy serves the good config and shows the refused one beside it.
            active = json.dumps(http["active_state"])
            assert "FAIL_CLOSE" in active
            assert "FAIL_SOMETIMES" not in active
            assert "FAIL_SOMETIMES" in json.dumps(http["error_state"]["failed_configuration"])

    scenario()


def test_fail_close_filter_config_change_applies_when_valid(tmp_path):
    @run_async(timeout=90)
    async def scenario():
        async with Rig(tmp_path) as rig:
            # A valid change applies: checks now go to a cluster that does not exist.
            rig.ads.set_resources(
                LISTENER_TYPE,
                [
                    http_listener(
                        http_config(
                            transport={
                                "checkCluster": "outbound|1||nowhere",
                                "networkFailPolicy": {"policy": "FAIL_CLOSE"},
                            }
                        )
                    ),
                    tcp_listener("client"),
                ],
            )

            async def refused():
                return (await rig.get("/x"))[0] == 503

            await eventually(refused, what="fail closed without a Mixer cluster")
            status, body = await rig.get("/y")
            assert status == 503
            assert body.startswith("UNAVAILABLE: ")

    scenario()


async def _echo_through(reader, writer, payload: bytes) -> bytes:
    writer.write(payload)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(payload)), 5)


def test_tcp_filter_checks_on_connect_and_reports_bytes_periodically(tmp_path):
    @run_async(timeout=90)
    async def scenario():
        async with Rig(tmp_path) as rig:
            labels = {"reporter": "destination", "destination_workload": "echo-v1"}
            reader, writer = await asyncio.open_connection(IP, TCP_PORT)
            assert await _echo_through(reader, writer, b"x" * 1000) == b"x" * 1000

            # "open", then "continue" every second with that second's bytes.
            async def received(at_least):
                value = await rig.metric("istio_tcp_received_bytes_total", **labels)
                return value >= at_least

            await eventually(lambda: received(1000), timeout=10, what="open report")
            assert await _echo_through(reader, writer, b"y" * 500) == b"y" * 500
            await eventually(lambda: received(1500), timeout=10, what="continue report")
            sent = await rig.metric("istio_tcp_sent_bytes_total", **labels)
            assert sent == 1500  # the echo sent back exactly what it got, once each
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(1.5)
            assert await rig.metric("istio_tcp_received_bytes_total", **labels) == 1500

            # A connection Mixer denies is closed before any byte reaches the server.
            await apply_text(rig.store.url, DENY_TCP)
            await eventually(lambda: _has_rule(rig, "istio-system/denytcp"), what="deny rule")
            rig.ads.set_resources(
                LISTENER_TYPE, [http_listener(http_config()), tcp_listener("intruder")]
            )

            async def denied():
                reader, writer = await asyncio.open_connection(IP, TCP_PORT)
                writer.write(b"let me in")
                try:
                    data = await asyncio.wait_for(reader.read(100), 5)
                except ConnectionError:
                    data = b""
                writer.close()
                return data == b""

            await eventually(denied, timeout=20, what="the connection refused")
            stats = await rig.envoy.admin_get("/stats", filter="tcp_mixer_filter")
            assert "wasmcustom.tcp_mixer_filter.inbound.check_denied: 0" not in stats

    scenario()


async def apply_text(store_url: str, text: str) -> None:
    async with ConfigClient(store_url) as client:
        for resource in loader.load_text(text):
            await client.apply(resource)


def _has_rule(rig: Rig, name: str) -> bool:
    return any(f"{r.namespace}/{r.name}" == name for r in rig.mixer.snapshot.rules)
