"""Test support for xDS: a real Envoy launcher, an ADS client driver, an in-memory stream.

Importable by any test (not conftest-only):
- `EnvoyProcess(bootstrap, workdir)`: the real Envoy binary on loopback, with `start()`,
  `admin_url`, `wait_live()`, `config_dump()`, `stop()`;
- `ads_bootstrap(node_id, xds_port)`: a minimal ADS bootstrap for it;
- `AdsDriver`: an ADS client that reads like the protocol (`request`, `expect_response`,
  `expect_no_response`, `ack`, `nack`), over gRPC (`AdsDriver.grpc`) or straight into an
  XdsServer with no sockets (`AdsDriver.memory`);
- `run_async`: runs an async test function in a fresh loop, bounded, failing on leaked tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format, struct_pb2
from google.rpc import status_pb2

from pilot.xds.server import XdsServer
from pkg.testing.aio import run_async as run_async
from pkg.testing.envoy import EnvoyError as EnvoyError
from pkg.testing.envoy import EnvoyProcess as EnvoyProcess
from pkg.testing.envoy import envoy_path as envoy_path

TEST_NODE_ID = "sidecar~127.0.0.1~test.default~default.svc.cluster.local"


# Envoy.


def node(
    node_id: str = TEST_NODE_ID, cluster: str = "test", metadata: dict[str, Any] | None = None
) -> base_pb2.Node:
    result = base_pb2.Node(id=node_id, cluster=cluster)
    if metadata:
        result.metadata.CopyFrom(json_format.ParseDict(metadata, struct_pb2.Struct()))
    return result


def ads_bootstrap(
    node_id: str,
    xds_port: int,
    *,
    xds_host: str = "127.0.0.1",
    cluster: str = "test",
    metadata: dict[str, Any] | None = None,
    admin_host: str = "127.0.0.1",
    admin_port: int = 0,
    strict: bool = True,
) -> dict[str, Any]:
    """A minimal bootstrap: everything (LDS, CDS, RDS, EDS) from ADS at xds_host:xds_port.

    `strict` turns deprecated fields into NACKs, so tests catch them.
    """
    ads = {"ads": {}, "resource_api_version": "V3"}
    bootstrap: dict[str, Any] = {
        "node": {"id": node_id, "cluster": cluster, "metadata": metadata or {}},
        "admin": {"address": {"socket_address": {"address": admin_host, "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
            },
            "cds_config": ads,
            "lds_config": ads,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": "xds-grpc",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "xds-grpc",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": xds_host,
                                                    "port_value": xds_port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                }
            ]
        },
    }
    if strict:
        bootstrap["layered_runtime"] = {
            "layers": [
                {
                    "name": "static",
                    "static_layer": {"envoy.features.fail_on_any_deprecated_feature": True},
                }
            ]
        }
    return bootstrap


# ADS client driver.


class MemoryTransport:
    """A stream made of two queues; the XdsServer end of an `AdsDriver.memory` stream."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self.responses: asyncio.Queue[discovery_pb2.DiscoveryResponse] = asyncio.Queue()

    async def recv(self) -> discovery_pb2.DiscoveryRequest | None:
        return await self.requests.get()

    async def send(self, response: discovery_pb2.DiscoveryResponse) -> None:
        await self.responses.put(response)


class AdsDriver:
    """A scripted ADS client that reads like the protocol.

    It remembers the last version it accepted per type, as Envoy does, and puts it in every
    request's version_info; the node goes in the first request only.
    """

    def __init__(
        self,
        send: Callable[[discovery_pb2.DiscoveryRequest], Awaitable[None]],
        recv: Callable[[], Awaitable[discovery_pb2.DiscoveryResponse | None]],
        node: base_pb2.Node,
        close_send: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._send = send
        self._recv = recv
        self._close_send = close_send
        self.call: grpc.aio.StreamStreamCall | None = None  # set on gRPC drivers
        self.node = node
        self._node_sent = False
        self.accepted: dict[str, str] = {}  # type URL -> last version acked
        self.names: dict[str, list[str]] = {}  # type URL -> last names requested
        self._pending: asyncio.Task[discovery_pb2.DiscoveryResponse | None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def grpc(cls, target: str, node: base_pb2.Node) -> AsyncIterator[AdsDriver]:
        """A driver on a real gRPC stream to `target` (host:port)."""
        async with grpc.aio.insecure_channel(target) as channel:
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()

            async def recv() -> discovery_pb2.DiscoveryResponse | None:
                response = await call.read()
                return None if response is grpc.aio.EOF else response

            driver = cls(call.write, recv, node, close_send=call.done_writing)
            driver.call = call
            try:
                yield driver
            finally:
                await driver._drop_pending()
                call.cancel()

    @classmethod
    @contextlib.asynccontextmanager
    async def memory(cls, server: XdsServer, node: base_pb2.Node) -> AsyncIterator[AdsDriver]:
        """A driver wired straight into `server.serve()`, no sockets."""
        transport = MemoryTransport()

        async def recv() -> discovery_pb2.DiscoveryResponse | None:
            get = asyncio.ensure_future(transport.responses.get())
            try:
                await asyncio.wait({get, serving}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not get.done():
                    get.cancel()
            if get.done() and not get.cancelled():
                return get.result()
            serving.result()  # raises what ended the stream
            return None

        async def close_send() -> None:
            await transport.requests.put(None)

        async with asyncio.TaskGroup() as tasks:
            serving = tasks.create_task(server.serve(transport, peer="memory"), name="xds-memory")
            driver = cls(transport.requests.put, recv, node, close_send=close_send)
            try:
                yield driver
            finally:
                await driver._drop_pending()
                await close_send()

    async def close_send(self) -> None:
        """Half-close: the client will send nothing more (the server then ends the stream)."""
        if self._close_send is not None:
            await self._close_send()

    async def request(
        self,
        type_url: str,
        names: Sequence[str] = (),
        *,
        nonce: str = "",
        version: str | None = None,
        error: str | None = None,
    ) -> None:
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=list(names),
            response_nonce=nonce,
            version_info=self.accepted.get(type_url, "") if version is None else version,
        )
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
        if not self._node_sent:
            request.node.CopyFrom(self.node)
            self._node_sent = True
        self.names[type_url] = list(names)
        await self._send(request)

    async def _next(self, timeout: float) -> discovery_pb2.DiscoveryResponse | None:
        # A receive cut short by a timeout stays pending, so no response is ever lost.
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._recv())
        async with asyncio.timeout(timeout):
            response = await asyncio.shield(self._pending)
        self._pending = None
        return response

    async def _drop_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pending
            self._pending = None

    async def expect_response(
        self, type_url: str | None = None, timeout: float = 10.0
    ) -> discovery_pb2.DiscoveryResponse:
        try:
            response = await self._next(timeout)
        except TimeoutError:
            raise AssertionError(f"no response within {timeout}s (wanted {type_url})") from None
        if response is None:
            raise AssertionError(f"stream ended (wanted a response of {type_url})")
        if type_url is not None and response.type_url != type_url:
            raise AssertionError(f"got a response of {response.type_url}, wanted {type_url}")
        return response

    async def expect_no_response(self, timeout: float = 0.2) -> None:
        """Nothing arrives within `timeout` (only a negative check can need a wait)."""
        try:
            response = await self._next(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected response: {_brief(response)}")

    async def expect_end(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            response = await self._next(timeout)
        if response is not None:
            raise AssertionError(f"wanted the stream to end, got {_brief(response)}")

    async def ack(
        self, response: discovery_pb2.DiscoveryResponse, names: Sequence[str] | None = None
    ) -> None:
        """Accept `response` (keeping the type's last names unless `names` is given)."""
        self.accepted[response.type_url] = response.version_info
        await self.request(
            response.type_url,
            self.names.get(response.type_url, []) if names is None else names,
            nonce=response.nonce,
        )

    async def nack(
        self,
        response: discovery_pb2.DiscoveryResponse,
        message: str,
        names: Sequence[str] | None = None,
    ) -> None:
        """Reject `response` with Envoy's error; version_info stays the last accepted."""
        await self.request(
            response.type_url,
            self.names.get(response.type_url, []) if names is None else names,
            nonce=response.nonce,
            error=message,
        )

    async def request_response_ack(
        self, type_url: str, names: Sequence[str] = ()
    ) -> discovery_pb2.DiscoveryResponse:
        """Send a request without nonce for `names`, read the answer, ACK it."""
        await self.request(type_url, names)
        response = await self.expect_response(type_url)
        await self.ack(response)
        return response


def _brief(response: discovery_pb2.DiscoveryResponse | None) -> str:
    if response is None:
        return "end of stream"
    return (
        f"{response.type_url} version {response.version_info} nonce {response.nonce} "
        f"({len(response.resources)} resources)"
    )


def unpack(response: discovery_pb2.DiscoveryResponse, message_type: type) -> list[Any]:
    """The resources of `response` as `message_type` messages."""
    result = []
    for packed in response.resources:
        message = message_type()
        if not packed.Unpack(message):
            raise AssertionError(f"resource of type {packed.type_url} is not a {message_type}")
        result.append(message)
    return result
