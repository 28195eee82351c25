"""One stream: a reader task classifying requests, a single writer sending responses.

Requests and new snapshots never write to the stream themselves: they record work (a watch
owed an answer, a snapshot to look at) and wake the writer, which reads the snapshot and
sends in push order. Work queued while the writer is busy coalesces, so a burst of requests
or snapshots costs one look per type, and two writers can never interleave on the stream (a
guard checks).

What is sent: an owed watch gets its whole subscription; otherwise a type is sent only when
its version differs from the one last sent (a NACKed version regenerated unchanged is not
resent: the client would reject it again). On EDS and RDS, whose responses need not repeat
unchanged resources (Envoy keeps what a response leaves out), a push carries only what
changed when the snapshot can tell (`Resources.changed_since`). A CDS response that changes
clusters the client has is followed by their endpoints, changed or not: Envoy warms each
changed cluster and waits for an EDS response naming it.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Generic, Protocol

from envoy.service.discovery.v3 import discovery_pb2

from pkg.xds import resources as res
from pkg.xds.cache import Snapshot
from pkg.xds.counters import Counters
from pkg.xds.events import StreamEvents
from pkg.xds.peer import NodeT, StreamInfo
from pkg.xds.request import Request, UndecodableRequestError
from pkg.xds.response import Response
from pkg.xds.stream import Action, StreamState, Watch

# (stream, request) -> why the stream may not make it, or None to go ahead.
AuthorizeRequest = Callable[[StreamInfo[NodeT], discovery_pb2.DiscoveryRequest], str | None]


class Transport(Protocol):
    """The two halves of a stream; gRPC in production, two queues in tests."""

    async def recv(self) -> discovery_pb2.DiscoveryRequest | Request | None:
        """The next request (decoded with its names key, or plain), or None once the
        client closed its side."""
        ...

    async def send(self, response: Response) -> None: ...


def unwrap(
    received: discovery_pb2.DiscoveryRequest | Request,
) -> tuple[discovery_pb2.DiscoveryRequest, bytes | None]:
    if isinstance(received, Request):
        return received.message, received.names_key
    return received, None


class Connection(Generic[NodeT]):
    def __init__(
        self,
        stream: StreamInfo[NodeT],
        transport: Transport,
        counters: Counters,
        *,
        log: logging.Logger,
        type_urls: frozenset[str] | None = None,
        authorize_request: AuthorizeRequest[NodeT] | None = None,
        send_gate: asyncio.Semaphore | None = None,
        events: StreamEvents | None = None,
    ) -> None:
        self.stream = stream
        self.conn_id = stream.conn_id
        self.connected_since = datetime.datetime.now(datetime.UTC)
        self.state = StreamState(type_urls)
        self.snapshot: Snapshot | None = None
        self.refusal: str | None = None  # set when authorize_request ended the stream
        self.undecodable: UndecodableRequestError | None = None  # a request that did not parse
        self._transport = transport
        self._counters = counters
        self._log = log
        self._authorize_request = authorize_request
        self._send_gate = send_gate  # shared by the server's streams: sends in flight at once
        self._events = events
        self._fresh_snapshot = False
        self._requested: set[str] = set()  # types a request asked to be answered
        self._wake = asyncio.Event()
        self._closing = False
        self._writing = False

    @property
    def node(self) -> NodeT:
        return self.stream.node

    # Work intake (no awaits: each call is atomic with respect to the writer).

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """The cache's callback: look at every subscribed type again."""
        self.snapshot = snapshot
        self._fresh_snapshot = True
        self._wake.set()

    def handle_request(self, received: discovery_pb2.DiscoveryRequest | Request) -> None:
        request, names_key = unwrap(received)
        if self._authorize_request is not None:
            refusal = self._authorize_request(self.stream, request)
            if refusal:
                self._log.warning("%s: refused: %s", self.conn_id, refusal)
                self.refusal = refusal
                self.close()
                return
        decision = self.state.on_request(request, names_key)
        short = res.short_name(decision.type_url)
        if request.HasField("error_detail"):
            # Counted and logged even when answered anyway (it named new resources).
            self._counters.nacks += 1
            if self._events is not None:
                self._events.on_nack(decision.type_url)
            self._log.warning(
                "NACK from %s (%s) for %s, nonce %s, still running version %r: %s",
                self.stream.name,
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
                self._log.debug("%s %s: respond (%s)", self.conn_id, short, decision.reason)
                self._requested.add(decision.type_url)
                self._wake.set()
            case Action.ACK:
                self._log.debug("%s %s: ack %s", self.conn_id, short, request.version_info)
            case Action.INVALID:
                self._log.warning("%s: ignoring request: %s", self.conn_id, decision.reason)
            case _:
                self._log.debug(
                    "%s %s: %s (%s)", self.conn_id, short, decision.action.value, decision.reason
                )

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
            except UndecodableRequestError as error:
                self._log.warning("%s: ending the stream: %s", self.conn_id, error)
                self.undecodable = error
                request = None
            except Exception as error:
                # A broken transport ends this stream only; the client reconnects.
                self._log.info("%s: reading the stream failed: %r", self.conn_id, error)
                request = None
            if request is None:
                self._log.debug("%s: client closed the stream", self.conn_id)
                self.close()
                return
            self.handle_request(request)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            fresh, self._fresh_snapshot = self._fresh_snapshot, False
            snapshot = self.snapshot
            requested, self._requested = self._requested, set()
            # A type the snapshot failed to produce for a request stays owed, and is tried
            # again with the next snapshot or request of that type, not on every wake.
            for type_url in res.push_order(self.state.watches):
                if self._closing:
                    break
                watch = self.state.watches[type_url]
                if watch.subscribed and (fresh or type_url in requested):
                    warming = await self._send_type(watch)
                    if warming is not None:
                        self._owe_endpoints(warming)
                        requested.add(res.ENDPOINT)
            if fresh and snapshot is not None and not self._closing and self._events is not None:
                self._events.on_snapshot_sent(snapshot)

    def _owe_endpoints(self, clusters: frozenset[str]) -> None:
        """After a CDS response, Envoy warms every cluster it changed (a new cluster object)
        and waits for that cluster's endpoints in an EDS response, even if they did not
        change; a request it sends then is an ACK of what it has, which would go unanswered,
        leaving the cluster warming until `initial_fetch_timeout` (15 s). So the endpoints of
        the changed clusters follow every CDS response, as Istio pushes EDS after CDS."""
        watch = self.state.watches.get(res.ENDPOINT)
        if watch is None or not watch.subscribed:
            return
        warm = clusters & watch.names
        if not warm:
            return
        if not watch.owed:
            watch.fresh = warm
        elif watch.fresh is not None:
            watch.fresh = watch.fresh | warm
        watch.owed = True

    async def _send_type(self, watch: Watch) -> frozenset[str] | None:
        """Sends what the watch is due. After a CDS response that replaced clusters the
        stream had, returns the clusters that changed (all of them when that cannot be
        told), which Envoy now warms; otherwise None."""
        sent = await self._send(watch)
        if watch.type_url != res.CLUSTER or sent is None:
            return None
        before, after = sent
        if before is None:
            return None  # the stream's first clusters: EDS requests follow on their own
        return after.differing(before)

    async def _send(self, watch: Watch) -> tuple[res.Resources | None, res.Resources] | None:
        """The resources sent before and now, or None when nothing was sent."""
        snapshot = self.snapshot
        if snapshot is None:
            return None  # no snapshot yet: the watch stays owed until one comes
        started = asyncio.get_running_loop().time()
        try:
            resources = snapshot.resources(watch.type_url, watch.subscription())
        except Exception:
            # A generator bug must not end the stream: skip this type this time, keep the
            # last config the client has.
            self._counters.generate_errors += 1
            if self._events is not None:
                self._events.on_generate_error(watch.type_url)
            self._log.exception(
                "generating %s for %s failed; not sending it",
                res.short_name(watch.type_url),
                self.stream.name,
            )
            return None
        if resources is None:
            return None  # nothing to answer yet; an owed watch stays owed
        owed = watch.owed
        if not owed and resources.version == watch.version_sent:
            return None
        before = watch.resources_sent
        only = None
        if not watch.wildcard and watch.resources_sent is not None:
            changed = resources.changed_since(watch.resources_sent)
            if not owed:
                if changed is not None and not changed:
                    # The change is elsewhere in a shared set: none of these names moved.
                    return None
                only = changed
            elif watch.fresh is not None and changed is not None:
                # The subscription grew (Envoy after a CDS change): the new names and what
                # changed; the client keeps the rest it has.
                only = changed | watch.fresh
        response = self.state.record_sent(watch.type_url, resources, only=only)
        try:
            await self._write(response)
        except Exception:
            if self._events is not None:
                self._events.on_send_error(watch.type_url)
            raise
        self._counters.responses += 1
        if self._events is not None:
            self._events.on_sent(
                watch.type_url, asyncio.get_running_loop().time() - started, response.size()
            )
        if not owed:
            self._counters.pushed_responses += 1
        self._log.debug(
            "%s %s: sent version %s nonce %s (%s resources)",
            self.conn_id,
            res.short_name(watch.type_url),
            response.version,
            response.nonce,
            len(resources) if only is None else f"{len(only)} of {len(resources)}",
        )
        return before, resources

    async def _write(self, response: Response) -> None:
        if self._writing:
            raise RuntimeError(f"{self.conn_id}: two writers on one xDS stream")
        self._writing = True
        try:
            if self._send_gate is None:
                await self._transport.send(response)
            else:
                async with self._send_gate:
                    await self._transport.send(response)
        finally:
            self._writing = False
