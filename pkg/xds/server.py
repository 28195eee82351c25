"""The xDS serving engine: streams in, the cache's snapshots out (state of the world, v3).

It knows nothing of what it serves. A component gives it a `ConfigWatcher` (the cache, reached
through its one `watch` method) and options saying how a stream's first request names its
client (`identify`), who may open a stream (`authorize`) and make a request
(`authorize_request`), and which types it serves. The engine owns the streams, the
protocol (`stream.py`), the single writer per stream (`connection.py`) and the counters.

    server = Server(cache, ServerOptions(identify=...))
    grpcservice.add_to(grpc_server, server, grpcservice.ADS)   # before grpc_server.start()
    ...
    await server.stop(grace)                                  # end every stream cleanly
    await grpc_server.stop(grace)
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import Callable
from typing import Generic

from envoy.service.discovery.v3 import discovery_pb2

from pkg.xds.cache import ConfigWatcher, Snapshot
from pkg.xds.connection import AuthorizeRequest, Connection, Transport, unwrap
from pkg.xds.counters import Counters
from pkg.xds.events import StreamEvents
from pkg.xds.peer import NodeT, Peer, StreamInfo
from pkg.xds.request import UndecodableRequestError


class InvalidStreamError(ValueError):
    """A request that does not parse, or a first request that does not open a stream this
    server can serve (INVALID_ARGUMENT)."""


@dataclasses.dataclass(frozen=True)
class Identified(Generic[NodeT]):
    key: str  # the cache key of the stream's snapshots
    node: NodeT
    name: str  # for logs and status


# (stream) -> why it may not be served, or None to serve it. The hook for "may this client
# have this identity": it sees the node the client claims and the peer gRPC saw.
Authorize = Callable[[StreamInfo[NodeT]], str | None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerOptions(Generic[NodeT]):
    # The first request -> who the stream serves; raises InvalidStreamError.
    identify: Callable[[discovery_pb2.DiscoveryRequest], Identified[NodeT]]
    authorize: Authorize[NodeT] | None = None
    authorize_request: AuthorizeRequest[NodeT] | None = None
    type_urls: frozenset[str] | None = None  # the types served (None: any)
    label: str = "xDS"  # how logs name the service: "ADS", "SDS"
    conn_prefix: str | None = None  # stream ids `<prefix>-<n>`; default `<key>-<n>`
    logger: str = "pkg.xds"
    refusal: str = "the xDS server is shutting down"
    # Responses being sent at once, over all streams (Istio's PILOT_PUSH_THROTTLE): a push
    # to thousands of proxies then holds that many responses in memory, not thousands, and
    # the first proxies are served sooner. None: no limit.
    max_concurrent_sends: int | None = None
    events: StreamEvents | None = None  # what the streams report, for metrics


class Server(Generic[NodeT]):
    def __init__(
        self,
        watcher: ConfigWatcher[Snapshot],
        options: ServerOptions[NodeT],
        counters: Counters | None = None,
    ) -> None:
        self._watcher = watcher
        self.options = options
        self.counters = counters if counters is not None else Counters()
        self._log = logging.getLogger(options.logger)
        self._connections: dict[str, Connection[NodeT]] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._streams_done = asyncio.Event()
        self._streams_done.set()
        self._send_gate = (
            asyncio.Semaphore(options.max_concurrent_sends)
            if options.max_concurrent_sends
            else None
        )

    @property
    def closing(self) -> bool:
        return self._closing

    async def serve(self, transport: Transport, peer: Peer | None = None) -> None:
        """Serve one stream until the client closes it or the server stops.

        Raises InvalidStreamError if a request does not parse or the first one does not
        identify a client,
        PermissionError if the client may not open this stream or make a request,
        ConnectionRefusedError while the server stops.
        """
        peer = peer or Peer()
        label = self.options.label
        if self._closing:
            raise ConnectionRefusedError(self.options.refusal)
        try:
            received = await transport.recv()
        except UndecodableRequestError as error:
            self.counters.rejected_streams += 1
            self._log.warning("refusing %s stream from %s: %s", label, peer.address or "?", error)
            raise InvalidStreamError(str(error)) from None
        if received is None:
            return
        first, _ = unwrap(received)
        try:
            identified = self.options.identify(first)
        except InvalidStreamError as error:
            self.counters.rejected_streams += 1
            self._log.warning("refusing %s stream from %s: %s", label, peer.address or "?", error)
            raise
        prefix = self.options.conn_prefix or identified.key
        stream = StreamInfo(
            conn_id=f"{prefix}-{next(self._ids)}",
            key=identified.key,
            node=identified.node,
            envoy_node=first.node,
            peer=peer,
            name=identified.name,
        )
        if self.options.authorize is not None:
            refusal = self.options.authorize(stream)
            if refusal:
                self.counters.rejected_streams += 1
                self._log.warning(
                    "refusing %s stream from %s: %s", label, peer.address or "?", refusal
                )
                raise PermissionError(refusal)
        conn = Connection(
            stream,
            transport,
            self.counters,
            log=self._log,
            type_urls=self.options.type_urls,
            authorize_request=self.options.authorize_request,
            send_gate=self._send_gate,
            events=self.options.events,
        )
        self._connections[conn.conn_id] = conn
        self._streams_done.clear()
        self.counters.connects += 1
        self._log.info(
            "%s stream %s opened for %s from %s",
            label,
            conn.conn_id,
            stream.name,
            peer.address or "?",
        )
        cancel = self._watcher.watch(stream, conn.set_snapshot)
        try:
            conn.handle_request(received)
            await conn.run()
        finally:
            cancel()
            del self._connections[conn.conn_id]
            self.counters.disconnects += 1
            if not self._connections:
                self._streams_done.set()
            self._log.info("%s stream %s ended", label, conn.conn_id)
        if conn.refusal is not None:
            raise PermissionError(conn.refusal)
        if conn.undecodable is not None:
            raise InvalidStreamError(str(conn.undecodable))

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new streams and end the open ones cleanly, waiting at most `grace` seconds."""
        self._closing = True
        for conn in list(self._connections.values()):
            conn.close()
        try:
            async with asyncio.timeout(grace):
                await self._streams_done.wait()
        except TimeoutError:
            self._log.warning(
                "%s streams still open after %.1fs: %s",
                self.options.label,
                grace,
                ", ".join(self._connections),
            )

    def connections(self) -> list[Connection[NodeT]]:
        return list(self._connections.values())
