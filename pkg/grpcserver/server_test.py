"""new_server's limits over a real channel: a burst within them waits and is answered in
full, a call past the cap is refused at once."""

from __future__ import annotations

import asyncio
import collections

import grpc
import pytest

from pkg.grpcserver.server import STREAMS, UNARY, ServerLimits, new_server
from pkg.testing.aio import run_async
from pkg.testing.wait import eventually

METHOD = "/test.Gate/Pass"


class _Gate:
    """A unary method that answers once the gate opens, counting the calls running."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.running = 0
        self.most_running = 0

    async def handle(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.open.wait()
            return request
        finally:
            self.running -= 1


async def _serve(limits: ServerLimits, gate: _Gate) -> tuple[grpc.aio.Server, str]:
    server = new_server(limits)
    handler = grpc.unary_unary_rpc_method_handler(gate.handle)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Gate", {"Pass": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def _burst(address: str, calls: int, gate: _Gate, release_after: int) -> collections.Counter:
    codes: collections.Counter[str] = collections.Counter()
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(METHOD)

        async def one(i: int) -> None:
            try:
                assert await call(b"%d" % i, timeout=20) == b"%d" % i
                codes["OK"] += 1
            except grpc.aio.AioRpcError as error:
                codes[error.code().name] += 1

        tasks = [asyncio.create_task(one(i)) for i in range(calls)]
        # Let every call reach the server (answered or waiting) before the gate opens.
        await eventually(
            lambda: sum(codes.values()) >= release_after, interval=0.01, what="calls answered"
        )
        await asyncio.sleep(0.2)
        gate.open.set()
        await asyncio.gather(*tasks)
    return codes


@run_async
async def test_past_the_cap_calls_are_resource_exhausted_at_once():
    gate = _Gate()
    server, address = await _serve(ServerLimits(max_concurrent_rpcs=2, max_queued_rpcs=100), gate)
    try:
        codes = await _burst(address, 30, gate, release_after=28)
    finally:
        await server.stop(None)
    # Two were held until the gate opened; every other call was refused without waiting.
    assert gate.most_running == 2
    assert codes == {"OK": 2, "RESOURCE_EXHAUSTED": 28}


@run_async
async def test_a_burst_within_the_queue_waits_and_is_answered_in_full():
    gate = _Gate()
    server, address = await _serve(UNARY, gate)
    try:
        codes = await _burst(address, 2000, gate, release_after=0)
    finally:
        await server.stop(None)
    # Each call waited (in core, then as a task) and was answered once the gate opened.
    assert codes == {"OK": 2000}
    assert gate.most_running > 0


def test_the_queue_is_deterministic_and_component_options_win():
    limits = ServerLimits(max_concurrent_rpcs=4, max_queued_rpcs=7)
    options = dict(limits.channel_options())
    assert options["grpc.server.max_pending_requests"] == 7
    assert options["grpc.server.max_pending_requests_hard_limit"] == 7
    assert UNARY.max_concurrent_rpcs < STREAMS.max_concurrent_rpcs
    with pytest.raises(ValueError, match="limits must be positive"):
        ServerLimits(max_concurrent_rpcs=0)

    @run_async
    async def scenario():
        # A component's own value for a limit replaces ours rather than being sent twice.
        server = new_server(limits, options=[("grpc.server.max_pending_requests", 9)])
        await server.stop(None)

    scenario()
