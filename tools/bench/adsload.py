"""Many ADS streams from one process, each behaving as an Envoy sidecar does, cheaply.

A benchmark of Pilot at 2000 proxies cannot afford to parse every response: a full config of
1000 services is ~1.7 MB per proxy, 3.4 GB per push to everyone. Each stream here decodes
only a response's header (version, type URL, nonce: a three-field message that protobuf's C
parser fills while skipping the resources), ACKs at once as Envoy does, and records when
each response arrived. What the streams ask for (the EDS cluster names after CDS, the route
names after LDS) is set for all of them by the benchmark (`ClientSet.names`), which knows
the mesh it built; `check()` fully decodes a sample of responses to prove they hold it.

    async with ClientSet(target, nodes, streams_per_channel=50) as clients:
        await clients.sync(timeout=600)          # CDS, EDS, LDS, RDS fetched and ACKed
        mark = clients.mark()
        ...                                      # change the config
        await clients.wait(lambda s: s.received_since(mark, EDS), timeout=60)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SYNC_ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE)  # what Envoy fetches at start-up
_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
_UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def _header_type() -> Any:
    """DiscoveryResponse with only version_info (1), type_url (4) and nonce (5)."""
    proto = descriptor_pb2.FileDescriptorProto(name="bench_ads_header.proto", package="bench")
    message = proto.message_type.add(name="ResponseHeader")
    for name, number in (("version_info", 1), ("type_url", 4), ("nonce", 5)):
        message.field.add(
            name=name,
            number=number,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.ResponseHeader"))


ResponseHeader = _header_type()


@dataclasses.dataclass(frozen=True)
class Received:
    type_url: str
    version: str
    nonce: str
    size: int
    at: float  # time.perf_counter()


class Stream:
    """One proxy's ADS stream: requests what `names` says, ACKs everything it gets."""

    def __init__(self, index: int, node: base_pb2.Node, clients: ClientSet) -> None:
        self.index = index
        self.node = node
        self._clients = clients
        self._call: Any = None
        self.opened = False
        self._writing = asyncio.Lock()  # the reader's ACKs and the benchmark's requests
        self._node_sent = False
        self.accepted: dict[str, str] = {}
        self.asked: dict[str, tuple[str, ...]] = {}
        self.log: list[Received] = []
        self.samples: list[bytes] = []  # whole responses kept when sampling
        self.error: BaseException | None = None
        self.changed = asyncio.Event()

    def received_since(self, mark: float, type_url: str) -> bool:
        return any(r.at >= mark and r.type_url == type_url for r in reversed(self.log))

    def first_since(self, mark: float, type_url: str) -> Received | None:
        return next((r for r in self.log if r.at >= mark and r.type_url == type_url), None)

    def last(self, type_url: str) -> Received | None:
        return next((r for r in reversed(self.log) if r.type_url == type_url), None)

    async def open(self, channel: grpc.aio.Channel) -> None:
        self.opened = True
        self._call = channel.stream_stream(
            _METHOD,
            request_serializer=None,  # bytes: requests are assembled from cached pieces
            response_deserializer=None,  # bytes: decoded here, as little as needed
        )()

    async def request(
        self, type_url: str, nonce: str = "", names: Sequence[str] | None = None
    ) -> None:
        if names is None:
            names = self._clients.names.get(type_url, ())
        # A DiscoveryRequest as bytes: its small fields (and the node, first), then the names
        # encoded once for every stream asking for them (thousands of EDS clusters).
        header = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            response_nonce=nonce,
            version_info=self.accepted.get(type_url, ""),
        )
        if not self._node_sent:
            header.node.CopyFrom(self.node)
            self._node_sent = True
        names = tuple(names)
        self.asked[type_url] = names
        data = header.SerializeToString() + self._clients.encoded_names(names)
        async with self._writing:
            await self._call.write(data)

    async def run(self) -> None:
        """Read until the stream ends; ACK each response, re-ask EDS/RDS when names moved."""
        try:
            while True:
                data = await self._call.read()
                if data is grpc.aio.EOF:
                    return
                at = time.perf_counter()
                header = ResponseHeader.FromString(data)
                self.log.append(
                    Received(header.type_url, header.version_info, header.nonce, len(data), at)
                )
                if self._clients.sample(self.index):
                    self.samples.append(data)
                self.accepted[header.type_url] = header.version_info
                # The ACK names what the stream last asked for, as Envoy's does.
                await self.request(
                    header.type_url, header.nonce, self.asked.get(header.type_url, ())
                )
                # As Envoy: after CDS (LDS), ask for the endpoints (routes) it now names.
                follow = {CLUSTER: ENDPOINT, LISTENER: ROUTE}.get(header.type_url)
                wanted = tuple(self._clients.names.get(follow, ())) if follow else ()
                started = follow in self.accepted or follow in self._clients.follow_on_start
                if follow and started and self.asked.get(follow, ()) != wanted:
                    await self.request(follow, self._last_nonce(follow))
                self.changed.set()
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.CANCELLED:
                self.error = error
        except asyncio.InvalidStateError:
            # The call was cancelled (the set closing) between a response and its ACK: a
            # busy stream at the end of a run, not an error of the server's.
            if not self._call.cancelled():
                raise
        finally:
            self.changed.set()

    def _last_nonce(self, type_url: str) -> str:
        last = self.last(type_url)
        return last.nonce if last else ""

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()


class ClientSet:
    """N streams over N / `streams_per_channel` gRPC connections, one reader task each."""

    def __init__(
        self,
        target: str,
        nodes: Sequence[base_pb2.Node],
        *,
        streams_per_channel: int = 50,
        sample_every: int = 0,
    ) -> None:
        self.target = target
        self.names: dict[str, Sequence[str]] = {}
        self.follow_on_start: set[str] = set()
        self._encoded: dict[tuple[str, ...], bytes] = {}
        self._sample_every = sample_every
        self.streams = [Stream(i, n, self) for i, n in enumerate(nodes)]
        self._per_channel = streams_per_channel
        self._channels: list[grpc.aio.Channel] = []
        self._tasks: asyncio.TaskGroup | None = None
        self._stack = contextlib.AsyncExitStack()

    def encoded_names(self, names: tuple[str, ...]) -> bytes:
        """`resource_names` (field 3) of a request, encoded once per list of names."""
        found = self._encoded.get(names)
        if found is None:
            found = discovery_pb2.DiscoveryRequest(resource_names=names).SerializeToString()
            self._encoded = {names: found, **dict(list(self._encoded.items())[-8:])}
        return found

    def sample(self, index: int) -> bool:
        return self._sample_every > 0 and index % self._sample_every == 0

    async def __aenter__(self) -> ClientSet:
        self._tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for stream in self.streams:
            stream.cancel()
        for channel in self._channels:
            await channel.close(grace=None)
        await self._stack.aclose()

    async def connect(self, streams: Sequence[Stream], first: str = CLUSTER) -> None:
        """Open `streams` (new channels as needed) and send each its first request."""
        assert self._tasks is not None
        streams = [s for s in streams if not s.opened]
        for stream in streams:
            channel_index = stream.index // self._per_channel
            while len(self._channels) <= channel_index:
                self._channels.append(grpc.aio.insecure_channel(self.target, options=_UNLIMITED))
            await stream.open(self._channels[channel_index])
            self._tasks.create_task(stream.run(), name=f"ads-stream-{stream.index}")
        await asyncio.gather(*(s.request(first) for s in streams))

    async def sync(
        self, *, wave: int = 0, timeout: float = 600.0, on_wave: Callable[[int], None] | None = None
    ) -> float:
        """Connect every stream and wait until each has CDS, EDS, LDS and RDS; seconds taken.

        `wave`: connect that many streams at a time, the next wave once the last one has
        synced (0: all at once). Envoy asks for CDS and LDS at start, EDS and RDS after them.
        """
        self.follow_on_start = {ENDPOINT, ROUTE}
        started = time.perf_counter()
        size = wave or len(self.streams)
        for begin in range(0, len(self.streams), size):
            batch = self.streams[begin : begin + size]
            fresh = [s for s in batch if not s.opened]
            await self.connect(fresh)
            await asyncio.gather(*(s.request(LISTENER) for s in fresh))
            await self.wait(
                lambda s: all(s.last(t) is not None for t in SYNC_ORDER),
                timeout=timeout,
                streams=batch,
            )
            if on_wave is not None:
                on_wave(begin + len(batch))
        return time.perf_counter() - started

    @staticmethod
    def mark() -> float:
        return time.perf_counter()

    async def wait(
        self,
        condition: Callable[[Stream], bool],
        *,
        timeout: float,
        streams: Sequence[Stream] | None = None,
    ) -> None:
        """Until `condition` holds for every stream; TimeoutError says how many did not."""
        streams = list(self.streams if streams is None else streams)

        async def one(stream: Stream) -> None:
            while not condition(stream):
                if stream.error is not None:
                    raise RuntimeError(f"stream {stream.index} failed: {stream.error}")
                stream.changed.clear()
                await stream.changed.wait()

        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(one(s) for s in streams))
        except TimeoutError:
            missing = sum(not condition(s) for s in streams)
            raise TimeoutError(
                f"{missing} of {len(streams)} streams not there in {timeout}s"
            ) from None

    def errors(self) -> list[str]:
        return [f"{s.index}: {s.error}" for s in self.streams if s.error is not None]
