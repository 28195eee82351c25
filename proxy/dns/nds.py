"""The agent's NDS stream: Pilot's NameTable for this proxy, into the DNS proxy.

One ADS stream of the agent's own, with the node Envoy has (so Pilot builds the same view),
subscribed to `type.googleapis.com/istio.networking.nds.v1.NameTable` alone. Each response is
applied and ACKed; one that does not parse is NACKed and the last table kept. When the stream
ends or cannot be opened it is opened again after a bounded back-off, until cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import message

from api.networking.nds.v1 import nds_pb2
from pkg.aio.backoff import Backoff

log = logging.getLogger("pilot-agent.nds")

NAME_TABLE = "type.googleapis.com/istio.networking.nds.v1.NameTable"


@dataclasses.dataclass(frozen=True)
class NdsOptions:
    target: str  # a gRPC target: `unix:<path>` (Envoy's relay) or `host:port`
    node: base_pb2.Node
    backoff: Backoff = dataclasses.field(default_factory=lambda: Backoff(0.2, 5.0, 0.2))


class NdsClient:
    def __init__(self, *, options: NdsOptions, apply: Callable[[nds_pb2.NameTable], None]) -> None:
        self.options = options
        self._apply = apply
        self.updates = 0  # tables applied (tests and logs read it)

    async def run(self) -> None:
        """Keeps a stream open and the table applied; runs until cancelled."""
        backoff = dataclasses.replace(self.options.backoff)
        while True:
            try:
                async with grpc.aio.insecure_channel(self.options.target) as channel:
                    await self._stream(channel, backoff)
            except grpc.aio.AioRpcError as error:
                log.info("NDS stream to %s: %s", self.options.target, error.code().name)
            await asyncio.sleep(backoff.next_delay())

    async def _stream(self, channel: grpc.aio.Channel, backoff: Backoff) -> None:
        requests: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
        requests.put_nowait(
            discovery_pb2.DiscoveryRequest(node=self.options.node, type_url=NAME_TABLE)
        )

        async def outgoing() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
            while True:
                yield await requests.get()

        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        call = stub.StreamAggregatedResources(outgoing())
        version = ""
        async for response in call:
            if response.type_url != NAME_TABLE:
                continue
            ack = discovery_pb2.DiscoveryRequest(
                type_url=NAME_TABLE,
                response_nonce=response.nonce,
                version_info=response.version_info,
            )
            try:
                table = nds_pb2.NameTable()
                if response.resources and not response.resources[0].Unpack(table):
                    raise message.DecodeError(f"a {response.resources[0].type_url}")
            except message.DecodeError as error:
                ack.version_info = version
                ack.error_detail.message = f"NameTable does not parse: {error}"
                log.warning("NACK of NDS version %s: %s", response.version_info, error)
            else:
                self._apply(table)
                self.updates += 1
                version = response.version_info
                backoff.reset()
            requests.put_nowait(ack)
