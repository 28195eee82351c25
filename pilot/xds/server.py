"""Pilot's ADS server: state-of-the-world xDS v3 over gRPC, fed by a generator callable.

The server knows nothing of services or Istio config. Whoever builds it hands it a
`Generate` function `(proxy, type_url, names) -> [(name, message), ...]` and calls `push()`
when something changed; the server owns the streams, the protocol (see `stream.py`),
debouncing, versions and the per-proxy status behind `istioctl proxy-status`.

Lifecycle, owned by the caller:

    xds = XdsServer(generate)
    xds.add_to(grpc_server)                       # before grpc_server.start()
    tasks.create_task(xds.run(), name="xds-push") # the debounce loop, in the owner's TaskGroup
    ...
    await xds.stop(grace)                         # end every stream cleanly
    await grpc_server.stop(grace)
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from pilot.xds.connection import Connection, Generate, Transport
from pilot.xds.debounce import Debouncer, PushRequest
from pilot.xds.monitoring import XdsMetrics
from pilot.xds.proxy import InvalidNodeError, Proxy, parse_node
from pilot.xds.status import ConnectionStatus, Counters

__all__ = ["Authorize", "Generate", "XdsServer"]

# (proxy, URI SANs of its client certificate) -> why it is refused, or None to accept.
Authorize = Callable[[Proxy, Sequence[str]], str | None]

log = logging.getLogger("pilot.xds")


class XdsServer:
    def __init__(
        self,
        generate: Generate,
        *,
        debounce_after: float = 0.1,
        debounce_max: float = 1.0,
        authorize: Authorize | None = None,
        metrics: XdsMetrics | None = None,
    ) -> None:
        self._generate = generate
        self._authorize = authorize
        self._debouncer = Debouncer(debounce_after, debounce_max)
        self._pushed = asyncio.Event()  # set whenever push() queues something
        self._connections: dict[str, Connection] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._streams_done = asyncio.Event()
        self._streams_done.set()
        self.counters = Counters()
        self.metrics = metrics if metrics is not None else XdsMetrics()
        self.metrics.watch_connections(lambda: len(self._connections))

    # Serving.

    def add_to(self, grpc_server: grpc.aio.Server) -> None:
        """Register the AggregatedDiscoveryService on `grpc_server`."""
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(
            _AdsServicer(self), grpc_server
        )

    async def serve(
        self, transport: Transport, peer: str = "", peer_identities: Sequence[str] | None = None
    ) -> None:
        """Serve one ADS stream until the client closes it or the server stops.

        `peer_identities`: the URI SANs of the client's certificate on a mutual-TLS port
        (None on a plaintext one); the `authorize` hook then decides whether that peer may
        speak for the proxy its node names. Raises InvalidNodeError if the first request does
        not identify a proxy, PermissionError if the peer may not be that proxy.
        """
        if self._closing:
            raise ConnectionRefusedError("xDS server is shutting down")
        first = await transport.recv()
        if first is None:
            return
        try:
            proxy = parse_node(first.node)
        except InvalidNodeError as error:
            self.counters.rejected_streams += 1
            log.warning("refusing ADS stream from %s: %s", peer or "?", error)
            raise
        if peer_identities is not None and self._authorize is not None:
            refusal = self._authorize(proxy, peer_identities)
            if refusal:
                self.counters.rejected_streams += 1
                log.warning("refusing ADS stream from %s: %s", peer or "?", refusal)
                raise PermissionError(refusal)
        conn = Connection(
            f"{proxy.node_id}-{next(self._ids)}",
            proxy,
            transport,
            self._generate,
            self.counters,
            peer=peer,
            metrics=self.metrics,
        )
        self._connections[conn.conn_id] = conn
        self._streams_done.clear()
        self.counters.connects += 1
        log.info("ADS stream %s connected from %s", conn.conn_id, peer or "?")
        try:
            conn.handle_request(first)
            await conn.run()
        finally:
            del self._connections[conn.conn_id]
            self.counters.disconnects += 1
            if not self._connections:
                self._streams_done.set()
            log.info("ADS stream %s ended", conn.conn_id)

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new streams and end the open ones cleanly, waiting at most `grace` seconds."""
        self._closing = True
        for conn in list(self._connections.values()):
            conn.close()
        try:
            async with asyncio.timeout(grace):
                await self._streams_done.wait()
        except TimeoutError:
            log.warning(
                "xDS streams still open after %.1fs: %s", grace, ", ".join(self._connections)
            )

    # Pushing.

    async def push(
        self,
        reason: str,
        affects: Callable[[Proxy], bool] | None = None,
        full: bool = True,
    ) -> None:
        """Queue a push: after debouncing, affected proxies get what changed.

        `affects` picks the proxies concerned (None: all); `full=False` regenerates endpoints
        only. Queued pushes merge: reasons add up, `affects` predicates are OR-ed. Pushes are
        carried out by `run()`, which the owner keeps running.
        """
        self.counters.push_requests += 1
        self._debouncer.add(asyncio.get_running_loop().time(), reason, affects, full)
        self._pushed.set()

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        """The debounce loop: carries out queued pushes. Runs until cancelled."""
        loop = asyncio.get_running_loop()
        if started is not None:
            started.set()
        while True:
            deadline = self._debouncer.deadline()
            if deadline is None:
                await self._pushed.wait()
                self._pushed.clear()
                continue
            request = self._debouncer.take(loop.time())
            if request is not None:
                self._push_now(request)
                continue
            try:
                async with asyncio.timeout_at(deadline):
                    await self._pushed.wait()
            except TimeoutError:
                pass
            self._pushed.clear()

    def _push_now(self, request: PushRequest) -> None:
        self.counters.pushes += 1
        self.metrics.on_push(request.reasons)
        targets = [c for c in self._connections.values() if self._affected(request, c)]
        log.info(
            "push %d (%s, %s) to %d of %d proxies: %s",
            self.counters.pushes,
            "full" if request.full else "endpoints",
            "all" if request.affects is None else "filtered",
            len(targets),
            len(self._connections),
            "; ".join(request.reasons[:5]) + (" ..." if len(request.reasons) > 5 else ""),
        )
        for conn in targets:
            conn.request_push(request.full, since=request.first)

    @staticmethod
    def _affected(request: PushRequest, conn: Connection) -> bool:
        try:
            return request.applies_to(conn.proxy)
        except Exception:
            # A broken predicate must not stop pushes: pushing too much is only work.
            log.exception("push predicate failed for %s; pushing to it", conn.proxy.node_id)
            return True

    # Status.

    def connections(self) -> list[ConnectionStatus]:
        return [c.status() for c in self._connections.values()]

    def connection(self, proxy_id: str) -> Connection | None:
        """The newest stream of the proxy whose id (`<pod>.<namespace>`) or node id is given."""
        found = [c for c in self._connections.values() if proxy_id in (c.proxy.id, c.proxy.node_id)]
        return found[-1] if found else None

    def status(self) -> dict[str, Any]:
        return {
            "counters": self.counters.to_json(),
            "proxies": [s.to_json() for s in self.connections()],
        }


class _GrpcTransport:
    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    async def recv(self) -> discovery_pb2.DiscoveryRequest | None:
        request = await self._context.read()
        return None if request is grpc.aio.EOF else request

    async def send(self, response: discovery_pb2.DiscoveryResponse) -> None:
        await self._context.write(response)


class _AdsServicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, xds: XdsServer) -> None:
        self._xds = xds

    async def StreamAggregatedResources(
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> None:
        try:
            await self._xds.serve(
                _GrpcTransport(context),
                peer=context.peer(),
                peer_identities=_peer_identities(context),
            )
        except InvalidNodeError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except PermissionError as error:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
        except ConnectionRefusedError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    async def DeltaAggregatedResources(
        self, request_iterator: Any, context: grpc.aio.ServicerContext
    ) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "delta xDS is not served; use state of the world"
        )


def _peer_identities(context: grpc.aio.ServicerContext) -> list[str] | None:
    """URI SANs of the peer's verified client certificate; None when the port is plaintext."""
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    sans = auth.get("x509_subject_alternative_name", [])
    return [san.decode() for san in sans if san.startswith(b"spiffe://")]
