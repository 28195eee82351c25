"""One ADS stream: a reader task classifying requests, a single writer sending responses.

Requests and pushes never write to the stream themselves: they record work (types a request
asked for, a pending push) and wake the writer, which generates and sends in push order.
Work queued while the writer is busy coalesces, so a burst of requests or pushes costs one
generation per type, and two writers can never interleave on the stream (a guard checks).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from envoy.service.discovery.v3 import discovery_pb2

from pilot.xds import resources as res
from pilot.xds.monitoring import XdsMetrics
from pilot.xds.proxy import Proxy
from pilot.xds.resources import Resource
from pilot.xds.status import STATUS_TYPES, ConnectionStatus, Counters, TypeStatus
from pilot.xds.stream import Action, StreamState, Watch

log = logging.getLogger("pilot.xds")

Generate = Callable[[Proxy, str, Sequence[str]], Sequence[Resource]]


class Transport(Protocol):
    """The two halves of a stream; gRPC in production, two queues in tests."""

    async def recv(self) -> discovery_pb2.DiscoveryRequest | None:
        """The next request, or None once the client closed its side."""
        ...

    async def send(self, response: discovery_pb2.DiscoveryResponse) -> None: ...


class Connection:
    def __init__(
        self,
        conn_id: str,
        proxy: Proxy,
        transport: Transport,
        generate: Generate,
        counters: Counters,
        peer: str = "",
        metrics: XdsMetrics | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.proxy = proxy
        self.peer = peer
        self.connected_since = datetime.datetime.now(datetime.UTC)
        self.state = StreamState()
        self._transport = transport
        self._generate = generate
        self._counters = counters
        self._metrics = metrics if metrics is not None else XdsMetrics()
        self._push_since: float | None = None  # loop time of the oldest change not yet sent
        self._requested: set[str] = set()  # types a request asked to be answered
        self._push_types: set[str] | None = None  # None: no push pending; empty: all types
        self._wake = asyncio.Event()
        self._closing = False
        self._writing = False

    # Work intake (no awaits: each call is atomic with respect to the writer).

    def handle_request(self, request: discovery_pb2.DiscoveryRequest) -> None:
        decision = self.state.on_request(request)
        short = res.short_name(decision.type_url)
        if request.HasField("error_detail"):
            # Counted and logged even when answered anyway (it named new resources).
            self._counters.nacks += 1
            self._metrics.on_nack(decision.type_url)
            log.warning(
                "NACK from %s (%s) for %s, nonce %s, still running version %r: %s",
                self.proxy.node_id,
                self.conn_id,
                short,
                request.response_nonce,
                request.version_info,
                request.error_detail.message,
            )
        if decision.acked:
            self._counters.acks += 1
        match decision.action:
            case Action.RESPOND:
                log.debug("%s %s: respond (%s)", self.conn_id, short, decision.reason)
                self._requested.add(decision.type_url)
                self._wake.set()
            case Action.ACK:
                log.debug("%s %s: ack %s", self.conn_id, short, request.version_info)
            case Action.INVALID:
                log.warning("%s: ignoring request: %s", self.conn_id, decision.reason)
            case _:
                log.debug(
                    "%s %s: %s (%s)", self.conn_id, short, decision.action.value, decision.reason
                )

    def request_push(self, full: bool, since: float | None = None) -> None:
        """Regenerate subscribed types (all if `full`, else endpoints) and send what changed.

        `since`: the loop time of the change behind the push, for pilot_proxy_convergence_time.
        """
        if since is not None and (self._push_since is None or since < self._push_since):
            self._push_since = since
        types = set() if full else {res.ENDPOINT}
        if self._push_types is None:
            self._push_types = types
        elif not types or not self._push_types:
            self._push_types = set()
        else:
            self._push_types |= types
        self._wake.set()

    def close(self) -> None:
        """End the stream cleanly (server shutdown); the writer returns after its current send."""
        self._closing = True
        self._wake.set()

    # The stream's tasks.

    async def run(self) -> None:
        """Serve the stream until the client closes it or `close()` is called."""
        async with asyncio.TaskGroup() as tasks:
            reader = tasks.create_task(self._read_loop(), name=f"xds-read {self.conn_id}")
            await self._write_loop()
            reader.cancel()

    async def _read_loop(self) -> None:
        while True:
            try:
                request = await self._transport.recv()
            except Exception as error:
                # A broken transport ends this stream only; Envoy reconnects.
                log.info("%s: reading the stream failed: %r", self.conn_id, error)
                request = None
            if request is None:
                log.debug("%s: client closed the stream", self.conn_id)
                self.close()
                return
            self.handle_request(request)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            requested, self._requested = self._requested, set()
            push_types, self._push_types = self._push_types, None
            since, self._push_since = self._push_since, None
            for type_url in res.push_order(self.state.watches):
                forced = type_url in requested
                pushed = push_types is not None and (not push_types or type_url in push_types)
                if (forced or pushed) and not self._closing:
                    await self._send_type(type_url, forced=forced)
            if since is not None and not self._closing:
                self._metrics.on_converged(asyncio.get_running_loop().time() - since)

    async def _send_type(self, type_url: str, *, forced: bool) -> None:
        watch = self.state.watches[type_url]
        if not watch.subscribed:
            return
        started = asyncio.get_running_loop().time()
        resources = self._resources(watch)
        if resources is None:
            watch.owed = watch.owed or forced
            return
        version = res.version_of(resources)
        # A push sends only changed content; a request is always answered. A NACKed version
        # regenerated unchanged is not resent: Envoy would reject it again.
        if not forced and not watch.owed and version == watch.version_sent:
            return
        response = self.state.record_sent(type_url, resources, version)
        try:
            await self._write(response)
        except Exception:
            self._metrics.on_send_error(type_url)
            raise
        self._counters.responses += 1
        self._metrics.on_sent(
            type_url, asyncio.get_running_loop().time() - started, response.ByteSize()
        )
        log.debug(
            "%s %s: sent version %s nonce %s (%d resources)",
            self.conn_id,
            res.short_name(type_url),
            version,
            response.nonce,
            len(resources),
        )

    def _resources(self, watch: Watch) -> list[Resource] | None:
        """The resources for `watch` now, or None if the generator failed (logged)."""
        names = watch.request_names()
        try:
            generated = self._generate(self.proxy, watch.type_url, names)
            resources = res.check(watch.type_url, generated)
        except Exception:
            # A generator bug must not end the stream: skip this type for this push, keep
            # the last config Envoy has.
            self._counters.generate_errors += 1
            self._metrics.on_generate_error()
            log.exception(
                "generating %s for %s failed; not sending it",
                res.short_name(watch.type_url),
                self.proxy.node_id,
            )
            return None
        if not watch.wildcard:
            wanted = watch.names
            resources = [r for r in resources if r.name in wanted]
        return resources

    async def _write(self, response: discovery_pb2.DiscoveryResponse) -> None:
        if self._writing:
            raise RuntimeError(f"{self.conn_id}: two writers on one xDS stream")
        self._writing = True
        try:
            await self._transport.send(response)
        finally:
            self._writing = False

    def status(self) -> ConnectionStatus:
        watches = self.state.watches
        type_urls = list(STATUS_TYPES) + sorted(set(watches) - set(STATUS_TYPES))
        return ConnectionStatus(
            conn_id=self.conn_id,
            node_id=self.proxy.node_id,
            pod=self.proxy.pod,
            namespace=self.proxy.namespace,
            proxy_type=self.proxy.type,
            ip=self.proxy.ip,
            peer=self.peer,
            connected_since=self.connected_since,
            types={t: TypeStatus.of(t, watches.get(t)) for t in type_urls},
        )
