"""Test support: a small ADS server that hands Envoy a fixed config and records its requests.

Not Pilot: it serves whatever resources a test gives it, for every node alike, so that agent
tests can bring a real Envoy to LIVE without the control plane. State-of-the-world only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import json
import pathlib
import random
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from aiohttp import web
from envoy.config.core.v3 import address_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2, message

from pkg.config import kinds
from pkg.testing import wait
from proxy.agent import options as agent_options

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"

FAKE_BODY = "fake-ads\n"


def http_listener(name: str, ip: str, port: int, *, body: str = FAKE_BODY) -> listener_pb2.Listener:
    """A listener whose every HTTP request gets 200 and `body` from Envoy itself."""
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix="/"),
        direct_response=route_components_pb2.DirectResponseAction(status=200),
    )
    route.direct_response.body.inline_string = body
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=name,
        route_config=route_pb2.RouteConfiguration(
            name=name,
            virtual_hosts=[
                route_components_pb2.VirtualHost(name=name, domains=["*"], routes=[route])
            ],
        ),
    )
    router = manager.http_filters.add(name="envoy.filters.http.router")
    router.typed_config.Pack(router_pb2.Router())
    network_filter = listener_components_pb2.Filter(
        name="envoy.filters.network.http_connection_manager"
    )
    network_filter.typed_config.Pack(manager)
    return listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=ip, port_value=port)
        ),
        filter_chains=[listener_components_pb2.FilterChain(filters=[network_filter])],
    )


def sidecar_listeners(ip: str) -> list[listener_pb2.Listener]:
    """The two listeners a sidecar is ready with: `virtualOutbound` and `virtualInbound`."""
    return [
        http_listener("virtualOutbound", ip, agent_options.OUTBOUND_PORT),
        http_listener("virtualInbound", ip, agent_options.INBOUND_PORT),
    ]


@dataclasses.dataclass
class _Stream:
    responses: asyncio.Queue[discovery_pb2.DiscoveryResponse]
    answered: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(kw_only=True)
class FakeAdsOptions:
    host: str = "127.0.0.1"
    port: int = 0  # ephemeral
    # Type URL -> resources; a type not listed is answered with no resources.
    resources: dict[str, Sequence[message.Message]] = dataclasses.field(default_factory=dict)


class FakeAds(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """Serves `options.resources` over ADS; `requests` records every request in order."""

    def __init__(self, *, options: FakeAdsOptions) -> None:
        self._options = options
        self._resources = {url: list(items) for url, items in options.resources.items()}
        self._versions = dict.fromkeys(self._resources, 1)
        self._nonces = itertools.count(1)
        self._streams: list[_Stream] = []
        self._server: grpc.aio.Server | None = None
        self.requests: list[discovery_pb2.DiscoveryRequest] = []
        self.address = ""

    async def start(self) -> str:
        self._server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self, self._server)
        port = self._server.add_insecure_port(f"{self._options.host}:{self._options.port}")
        await self._server.start()
        self.address = f"{self._options.host}:{port}"
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None

    def set_resources(self, type_url: str, resources: Iterable[message.Message]) -> None:
        """Replaces one type's resources and pushes them to every stream that asked for it."""
        self._resources[type_url] = list(resources)
        self._versions[type_url] = self._versions.get(type_url, 0) + 1
        for stream in self._streams:
            if type_url in stream.answered:
                names = stream.answered[type_url]
                stream.responses.put_nowait(self._response(type_url, names))

    def requests_of(self, type_url: str) -> list[discovery_pb2.DiscoveryRequest]:
        return [r for r in self.requests if r.type_url == type_url]

    def _response(
        self, type_url: str, names: frozenset[str] = frozenset()
    ) -> discovery_pb2.DiscoveryResponse:
        """All resources of the type, or only those named (RDS, EDS subscribe by name)."""
        response = discovery_pb2.DiscoveryResponse(
            type_url=type_url,
            version_info=str(self._versions.get(type_url, 0)),
            nonce=str(next(self._nonces)),
        )
        for resource in self._resources.get(type_url, []):
            name = getattr(resource, "name", "") or getattr(resource, "cluster_name", "")
            if names and name not in names:
                continue
            packed = any_pb2.Any()
            packed.Pack(resource)
            response.resources.append(packed)
        return response

    async def _read(self, context: grpc.aio.ServicerContext, stream: _Stream) -> None:
        while (request := await context.read()) is not grpc.aio.EOF:
            assert isinstance(request, discovery_pb2.DiscoveryRequest)
            self.requests.append(request)
            names = frozenset(request.resource_names)
            # Answer a first request and a change of subscription; anything else is an ACK or
            # a NACK of what was sent (see envoy-notes.md on re-sent nonces).
            if not request.response_nonce or stream.answered.get(request.type_url) != names:
                stream.answered[request.type_url] = names
                stream.responses.put_nowait(self._response(request.type_url, names))

    async def _write(self, context: grpc.aio.ServicerContext, stream: _Stream) -> None:
        while True:
            await context.write(await stream.responses.get())

    async def StreamAggregatedResources(  # gRPC names the method
        self, request_iterator: object, context: grpc.aio.ServicerContext
    ) -> None:
        stream = _Stream(responses=asyncio.Queue())
        self._streams.append(stream)
        try:
            async with asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(self._write(context, stream), name="ads-write")
                await self._read(context, stream)
                writer.cancel()  # the client closed its side
        finally:
            self._streams.remove(stream)


def free_pod_ip() -> str:
    """A loopback address of its own for one test pod, where the standard ports are free.

    Far from the launcher's 127.0.1.N, so tests and a running local mesh do not collide.
    """
    ports = (
        agent_options.PROXY_ADMIN_PORT,
        agent_options.OUTBOUND_PORT,
        agent_options.INBOUND_PORT,
        agent_options.STATUS_PORT,
        agent_options.ENVOY_STATUS_PORT,
        agent_options.ENVOY_PROMETHEUS_PORT,
    )
    for _ in range(100):
        ip = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        if all(_port_free(ip, port) for port in ports):
            return ip
    raise RuntimeError("no free loopback address found")


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (an exited child nobody reaped yet)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, it was read
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def child_pids(pid: int) -> list[int]:
    """The live children of process `pid`, read from /proc."""
    children = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(entry.name))
    return children


# Envoy's start under a loaded machine takes longer than the shared default allows.
eventually = functools.partial(wait.eventually, timeout=20.0)


@dataclasses.dataclass(frozen=True)
class StoreRequest:
    method: str
    path: str
    body: Any


class FakeStore:
    """A stand-in for the config store's REST API, enough for registration: create, get,
    update (resourceVersion checked), delete, with Kubernetes Status errors. `fail_next`
    answers that many requests with 503; `requests` records every request in order."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self._host = host
        self._objects: dict[str, dict[str, Any]] = {}  # collection path + name -> object
        self._versions = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.fail_next = 0
        self.requests: list[StoreRequest] = []
        self.url = ""

    def objects(self) -> dict[str, dict[str, Any]]:
        return dict(self._objects)

    def put_object(self, obj: dict[str, Any]) -> None:
        """Stores `obj` as if someone had created it (e.g. an earlier run of the agent)."""
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        schema = kinds.ALL.by_kind(obj["apiVersion"], obj["kind"])
        assert schema is not None, obj["kind"]
        path = schema.collection_path(obj["metadata"]["namespace"])
        self._objects[f"{path}/{obj['metadata']['name']}"] = obj

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        self.url = f"http://{self._host}:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body: Any = await request.json() if request.can_read_body else None
        self.requests.append(StoreRequest(request.method, request.path, body))
        if self.fail_next > 0:
            self.fail_next -= 1
            return _status(503, "ServiceUnavailable", "the store is starting")
        if request.method == "POST":
            key = f"{request.path}/{body['metadata']['name']}"
            if key in self._objects:
                return _status(409, "AlreadyExists", f"{key} already exists")
            return self._store(key, body, 201)
        if request.method == "GET":
            if request.path not in self._objects:
                return _status(404, "NotFound", f"{request.path} not found")
            return web.json_response(self._objects[request.path])
        if request.method == "PUT":
            current = self._objects.get(request.path)
            if current is None:
                return _status(404, "NotFound", f"{request.path} not found")
            wanted = body["metadata"].get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                return _status(409, "Conflict", "the object has been modified")
            return self._store(request.path, body, 200)
        if request.method == "DELETE":
            if self._objects.pop(request.path, None) is None:
                return _status(404, "NotFound", f"{request.path} not found")
            return _status(200, "", "deleted")
        return _status(405, "MethodNotAllowed", request.method)

    def _store(self, key: str, obj: dict[str, Any], code: int) -> web.Response:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self._objects[key] = obj
        return web.json_response(obj, status=code)


def _status(code: int, reason: str, message: str) -> web.Response:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Success" if code < 400 else "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    return web.json_response(status, status=code)
