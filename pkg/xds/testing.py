"""Test support for every xDS server here: one client driver, an in-memory stream.

- `XdsDriver`: a client that reads like the protocol (`request`, `expect_response`,
  `expect_no_response`, `ack`, `nack`), over gRPC ADS (`XdsDriver.ads`), gRPC SDS
  (`XdsDriver.sds`, e.g. on a Unix socket) or straight into a server's `serve()` with no
  sockets (`XdsDriver.memory`);
- `MemoryTransport`: that in-memory stream, the server's end of two queues;
- `unpack`: a response's resources as typed messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.rpc import status_pb2

from pkg.xds.peer import Peer
from pkg.xds.response import Response

_UNLIMITED = [("grpc.max_receive_message_length", -1)]


class Serves(Protocol):
    async def serve(self, transport: Any, peer: Any = ...) -> None: ...


class MemoryTransport:
    """A stream made of two queues; the server end of an `XdsDriver.memory` stream."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self.responses: asyncio.Queue[Response] = asyncio.Queue()

    async def recv(self) -> discovery_pb2.DiscoveryRequest | None:
        return await self.requests.get()

    async def send(self, response: Response) -> None:
        await self.responses.put(response)


class XdsDriver:
    """A scripted xDS client that reads like the protocol.

    It remembers the last version it accepted per type, as Envoy does, and puts it in every
    request's version_info; the node goes in the first request only, or in every request
    with `node_every_request` (Envoy's SDS client without `set_node_on_first_message_only`).
    """

    def __init__(
        self,
        send: Callable[[discovery_pb2.DiscoveryRequest], Awaitable[None]],
        recv: Callable[[], Awaitable[discovery_pb2.DiscoveryResponse | None]],
        node: base_pb2.Node,
        close_send: Callable[[], Awaitable[None]] | None = None,
        *,
        node_every_request: bool = False,
    ) -> None:
        self._send = send
        self._recv = recv
        self._close_send = close_send
        self.call: grpc.aio.StreamStreamCall | None = None  # set on gRPC drivers
        self.node = node
        self.node_every_request = node_every_request
        self._node_sent = False
        self.accepted: dict[str, str] = {}  # type URL -> last version acked
        self.names: dict[str, list[str]] = {}  # type URL -> last names requested
        self._pending: asyncio.Future[discovery_pb2.DiscoveryResponse | None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def _grpc(
        cls,
        target: str,
        node: base_pb2.Node,
        open_call: Callable[[grpc.aio.Channel], Any],
        **kw: Any,
    ) -> AsyncIterator[XdsDriver]:
        async with grpc.aio.insecure_channel(target, options=_UNLIMITED) as channel:
            call = open_call(channel)

            async def recv() -> discovery_pb2.DiscoveryResponse | None:
                response = await call.read()
                return None if response is grpc.aio.EOF else response

            driver = cls(call.write, recv, node, close_send=call.done_writing, **kw)
            driver.call = call
            try:
                yield driver
            finally:
                await driver._drop_pending()
                call.cancel()

    @classmethod
    def ads(
        cls, target: str, node: base_pb2.Node
    ) -> contextlib.AbstractAsyncContextManager[XdsDriver]:
        """A driver on a real ADS stream to `target` (host:port)."""
        return cls._grpc(
            target,
            node,
            lambda channel: ads_pb2_grpc.AggregatedDiscoveryServiceStub(
                channel
            ).StreamAggregatedResources(),
        )

    @classmethod
    def sds(
        cls, target: str, node: base_pb2.Node, *, node_every_request: bool = True
    ) -> contextlib.AbstractAsyncContextManager[XdsDriver]:
        """A driver on a real SDS stream to `target` (`unix:/path`, host:port)."""
        return cls._grpc(
            target,
            node,
            lambda channel: sds_pb2_grpc.SecretDiscoveryServiceStub(channel).StreamSecrets(),
            node_every_request=node_every_request,
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def memory(
        cls,
        server: Serves,
        node: base_pb2.Node,
        *,
        peer: Peer | None = None,
        node_every_request: bool = False,
    ) -> AsyncIterator[XdsDriver]:
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
                return get.result().to_proto()
            serving.result()  # raises what ended the stream
            return None

        async def close_send() -> None:
            await transport.requests.put(None)

        async with asyncio.TaskGroup() as tasks:
            serving = tasks.create_task(
                server.serve(transport, peer or Peer(address="memory")), name="xds-memory"
            )
            driver = cls(
                transport.requests.put,
                recv,
                node,
                close_send=close_send,
                node_every_request=node_every_request,
            )
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
        with_node: bool | None = None,
    ) -> None:
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=list(names),
            response_nonce=nonce,
            version_info=self.accepted.get(type_url, "") if version is None else version,
        )
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
        if with_node is None:
            with_node = self.node_every_request or not self._node_sent
        if with_node:
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
        raise AssertionError(f"unexpected response: {brief(response)}")

    async def expect_end(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            response = await self._next(timeout)
        if response is not None:
            raise AssertionError(f"wanted the stream to end, got {brief(response)}")

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


def brief(response: discovery_pb2.DiscoveryResponse | None) -> str:
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
