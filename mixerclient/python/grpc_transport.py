"""GrpcTransport: the client's Check and Report calls to Mixer over grpc.aio.

The C++ core hands over requests already serialized by its own codec, so the calls go out
as raw bytes (no Python protobuf work on the way). Every call runs as a task the transport
owns; `aclose()` waits for them (bounded) and cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

import grpc

from mixerclient.python.client import ClientOptions, Completion, MixerClient

__all__ = ["GrpcTransport", "TransportOptions", "connect"]

log = logging.getLogger("mixerclient")

_CHECK = "/istio.mixer.v1.Mixer/Check"
_REPORT = "/istio.mixer.v1.Mixer/Report"


@dataclasses.dataclass(frozen=True)
class TransportOptions:
    check_timeout: float = 1.0  # seconds; past it the Check fails (and the fail policy decides)
    report_timeout: float = 5.0


class GrpcTransport:
    def __init__(self, channel: grpc.aio.Channel, options: TransportOptions | None = None) -> None:
        self.options = options or TransportOptions()
        # No serializers: the requests are bytes already, the responses go to C++ as bytes.
        self._check = channel.unary_unary(_CHECK)
        self._report = channel.unary_unary(_REPORT)
        self._calls: set[asyncio.Task[None]] = set()

    def check(self, request: bytes, completion: Completion) -> None:
        self._start(self._check, request, completion, self.options.check_timeout, "check")

    def report(self, request: bytes, completion: Completion) -> None:
        self._start(self._report, request, completion, self.options.report_timeout, "report")

    def _start(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable,
        request: bytes,
        completion: Completion,
        timeout: float,
        name: str,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._call(method, request, completion, timeout), name=f"mixer-{name}"
        )
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable,
        request: bytes,
        completion: Completion,
        timeout: float,
    ) -> None:
        try:
            response = await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            completion(error.code().value[0], error.details() or "", b"")
        except asyncio.CancelledError:
            completion(grpc.StatusCode.CANCELLED.value[0], "transport closed", b"")
            raise
        else:
            completion(0, "", response)

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    async def aclose(self, grace: float = 2.0) -> None:
        """Lets calls in flight finish for up to `grace` seconds, then cancels the rest."""
        if self._calls:
            _, pending = await asyncio.wait(set(self._calls), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


@contextlib.asynccontextmanager
async def connect(
    address: str,
    *,
    options: ClientOptions | None = None,
    transport_options: TransportOptions | None = None,
) -> AsyncIterator[MixerClient]:
    """A MixerClient talking to the Mixer at `address` (host:port); on exit the pending
    report batch is sent and waited for."""
    async with grpc.aio.insecure_channel(address) as channel:
        transport = GrpcTransport(channel, transport_options or TransportOptions())
        client = MixerClient(transport, options=options or ClientOptions())
        try:
            yield client
        finally:
            client.close()
            await transport.aclose()
