"""The one way the mesh's processes create a gRPC server: with limits so a burst queues.

A bare `grpc.aio.server()` under a burst of 2000 concurrent Checks answered 60 to 200 of
them CANCELLED (mixs as a process, tools/bench/grpc_burst.py; 209-226 with the client in
mixs' own process, mixer/server/server_test.py). The cause is gRPC core's pending
queue: the calls that arrived but that grpc.aio has not yet asked core for. grpc.aio asks
for calls from its event loop, so while the loop runs handlers a burst waits there, and
core drops waiting calls at random (random early detection) once more than
`grpc.server.max_pending_requests` (default 1000) wait, every one past
`grpc.server.max_pending_requests_hard_limit` (default 3000). A dropped call is destroyed
without a status, which the client sees as CANCELLED.

Two limits one reaches for first do not queue: grpc.aio's `maximum_concurrent_rpcs`
answers every call past it RESOURCE_EXHAUSTED at once ("Concurrent RPC limit exceeded!",
grpcio 1.85), and an HTTP/2 `grpc.max_concurrent_streams` made the server refuse the
streams past it (RST_STREAM REFUSED_STREAM, UNAVAILABLE at the client); both are left
above any burst we expect.

So a server here gets a deterministic core queue (soft limit = hard limit: nothing is
dropped before the queue is full) and a cap on the calls the process holds at once,
running or waiting for the event loop. Together they bound what a burst can take:
`max_concurrent_rpcs` tasks with their requests, plus `max_queued_rpcs` calls in core (a
few kilobytes of state each and their bytes, bounded by the HTTP/2 flow-control window).
Past the cap a call gets RESOURCE_EXHAUSTED, past the queue CANCELLED: that is the bound,
not a failure of it. Within both, a burst queues and is answered in full.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import grpc

__all__ = ["STREAMS", "UNARY", "ServerLimits", "new_server"]

# A waiting call older than this is dropped by core (CANCELLED). gRPC's own default, said
# here so that the limits and their drain time can be read together: 5000 queued Checks
# drain in ~2.5 s at mixs' ~2000 Checks/s on two cores.
MAX_SECONDS_QUEUED = 30


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """How many calls a server process holds at once and how many more wait in gRPC core."""

    # Calls the process holds, running or waiting for the event loop; past it,
    # RESOURCE_EXHAUSTED. Long-lived streams count for as long as they are open, so a
    # server of streams (xDS, SDS) needs room for every client it serves at once.
    max_concurrent_rpcs: int
    # Calls received by core and not yet taken by the loop; past it, CANCELLED. 2.5 times
    # the 2000-call burst of issue 10: all of a burst may land here while the loop is busy.
    max_queued_rpcs: int = 5000

    def __post_init__(self) -> None:
        if self.max_concurrent_rpcs < 1 or self.max_queued_rpcs < 1:
            raise ValueError(f"limits must be positive: {self}")

    def channel_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.server.max_pending_requests", self.max_queued_rpcs),
            ("grpc.server.max_pending_requests_hard_limit", self.max_queued_rpcs),
            ("grpc.server_max_unrequested_time_in_server", MAX_SECONDS_QUEUED),
        ]


# Unary calls (Check, Report, CreateCertificate) of a kilobyte or so, each held as a task:
# 5000 at once is tens of megabytes, 2.5 times a burst of 2000,, and is what a slow backend
# (Mixer's adapter timeout is 1 s) lets pile up at 5000 calls/s.
UNARY = ServerLimits(max_concurrent_rpcs=5000)
# Streams open for a proxy's lifetime: Pilot serves thousands of Envoys (pilot_scale runs
# 2000 ADS streams); past this a new stream waits in the queue and, after 30 s, reconnects.
STREAMS = ServerLimits(max_concurrent_rpcs=20_000)


def new_server(
    limits: ServerLimits, *, options: Sequence[tuple[str, Any]] = (), **kwargs: Any
) -> grpc.aio.Server:
    """A grpc.aio server with `limits`; `options` are the component's own channel args
    (message sizes, keepalive), `kwargs` go to grpc.aio.server (interceptors, ...)."""
    own = {name for name, _ in options}
    merged = [(k, v) for k, v in limits.channel_options() if k not in own]
    return grpc.aio.server(
        options=[*merged, *options],
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
        **kwargs,
    )
