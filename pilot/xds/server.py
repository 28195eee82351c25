"""Pilot's ADS server: pkg/xds's engine fed by per-proxy snapshots of a generator callable.

The server knows nothing of services or Istio config. Whoever builds it hands it a
`Generate` function `(proxy, type_url, names) -> resources` and calls `push()` when something
changed; the engine owns the streams and the protocol, this module the proxies' snapshots
(`cache.py`), debouncing, and the per-proxy status behind `istioctl proxy-status`.

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
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from pilot.xds.cache import Generate, ProxyCache
from pilot.xds.debounce import Debouncer, PushRequest
from pilot.xds.monitoring import XdsMetrics
from pilot.xds.proxy import Proxy, parse_node
from pilot.xds.status import ConnectionStatus, Counters, connection_status
from pkg.xds import grpcservice
from pkg.xds import resources as res
from pkg.xds.connection import Connection, Transport
from pkg.xds.peer import Peer, StreamInfo
from pkg.xds.server import Identified, Server, ServerOptions

__all__ = ["Authorize", "Generate", "XdsServer"]

# (proxy, URI SANs of its client certificate) -> why it is refused, or None to accept.
Authorize = Callable[[Proxy, Sequence[str]], str | None]

log = logging.getLogger("pilot.xds")

# Responses in flight at once over every stream: Istio's PILOT_PUSH_THROTTLE default.
PUSH_THROTTLE = 100


def _identify(request: discovery_pb2.DiscoveryRequest) -> Identified[Proxy]:
    proxy = parse_node(request.node)  # raises InvalidNodeError, an InvalidStreamError
    return Identified(key=proxy.node_id, node=proxy, name=proxy.node_id)


class XdsServer:
    def __init__(
        self,
        generate: Generate,
        *,
        debounce_after: float = 0.1,
        debounce_max: float = 1.0,
        authorize: Authorize | None = None,
        metrics: XdsMetrics | None = None,
        on_activity: Callable[[], None] | None = None,
    ) -> None:
        self._cache = ProxyCache(generate)
        # Told of every push request and push, so idle-time work (the full garbage
        # collection) keeps out of their way.
        self._on_activity = on_activity or (lambda: None)
        self.counters = Counters()
        self.metrics = metrics if metrics is not None else XdsMetrics()
        self._authorize = authorize
        self._engine: Server[Proxy] = Server(
            self._cache,
            ServerOptions(
                identify=_identify,
                authorize=self._check_peer if authorize is not None else None,
                label="ADS",
                logger="pilot.xds",
                refusal="xDS server is shutting down",
                max_concurrent_sends=PUSH_THROTTLE,
                events=self.metrics,
            ),
            self.counters,
        )
        self.metrics.watch_connections(lambda: len(self._engine.connections()))
        self._debouncer = Debouncer(debounce_after, debounce_max)
        self._pushed = asyncio.Event()  # set whenever push() queues something

    def _check_peer(self, stream: StreamInfo[Proxy]) -> str | None:
        """On a mutual-TLS port, may this peer speak for the proxy its node names?"""
        identities = stream.peer.identities
        if identities is None or self._authorize is None:
            return None
        return self._authorize(stream.node, identities)

    # Serving.

    def add_to(self, grpc_server: grpc.aio.Server) -> None:
        """Register the AggregatedDiscoveryService on `grpc_server`."""
        grpcservice.add_to(grpc_server, self._engine, grpcservice.ADS)

    async def serve(self, transport: Transport, peer: Peer | None = None) -> None:
        """Serve one ADS stream until the client closes it or the server stops.

        Raises InvalidNodeError if the first request does not identify a proxy,
        PermissionError if the peer may not be that proxy.
        """
        await self._engine.serve(transport, peer)

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new streams and end the open ones cleanly, waiting at most `grace` seconds."""
        await self._engine.stop(grace)

    # Pushing.

    async def push(
        self,
        reason: str,
        affects: Callable[[Proxy], bool] | None = None,
        full: bool = True,
        endpoints: Collection[str] | None = None,
        types: Collection[str] | None = None,
    ) -> None:
        """Queue a push: after debouncing, affected proxies get what changed.

        `affects` picks the proxies concerned (None: all); `types` the type URLs a full push
        regenerates (None: every type); `full=False` regenerates endpoints only, and
        `endpoints` (cluster names) narrows such a push to the proxies subscribed to one of
        them. Queued pushes merge: reasons add up, `affects` predicates are OR-ed, types and
        endpoint names unite. Pushes are carried out by `run()`, which the owner keeps running.
        """
        self.counters.push_requests += 1
        self._on_activity()
        self._debouncer.add(
            asyncio.get_running_loop().time(),
            reason,
            affects,
            full,
            frozenset(endpoints) if endpoints is not None else None,
            frozenset(types) if types is not None else None,
        )
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
        self._on_activity()
        self.metrics.on_push(request.reasons)
        connections = self._engine.connections()
        keys = {c.stream.key for c in connections if self._affected(request, c)}
        types = request.types
        renewed = sum(self._cache.renew(key, types, request.first) for key in keys)
        log.info(
            "push %d (%s, %s) to %d of %d proxies: %s",
            self.counters.pushes,
            (
                "full"
                if request.types is None
                else ",".join(sorted(res.short_name(t) for t in request.types))
            )
            if request.full
            else "endpoints",
            "all" if request.affects is None and request.endpoints is None else "filtered",
            renewed,
            len({c.stream.key for c in connections}),
            "; ".join(request.reasons[:5]) + (" ..." if len(request.reasons) > 5 else ""),
        )

    @staticmethod
    def _affected(request: PushRequest, conn: Connection[Proxy]) -> bool:
        if not request.full and request.endpoints is not None:
            watch = conn.state.watches.get(res.ENDPOINT)
            if watch is None or request.endpoints.isdisjoint(watch.names):
                return False
        try:
            return request.applies_to(conn.node)
        except Exception:
            # A broken predicate must not stop pushes: pushing too much is only work.
            log.exception("push predicate failed for %s; pushing to it", conn.node.node_id)
            return True

    # Status.

    def connections(self) -> list[ConnectionStatus]:
        return [connection_status(c) for c in self._engine.connections()]

    def connection(self, proxy_id: str) -> Connection[Proxy] | None:
        """The newest stream of the proxy whose id (`<pod>.<namespace>`) or node id is given."""
        found = [c for c in self._engine.connections() if proxy_id in (c.node.id, c.node.node_id)]
        return found[-1] if found else None

    def status(self) -> dict[str, Any]:
        return {
            "counters": self.counters.to_json(),
            "proxies": [s.to_json() for s in self.connections()],
        }
