"""MixerClient: Mixer's client for Python services, on the C++ core of mixerclient/.

The core does the work a sidecar's Mixer filter does: it answers Checks from its check cache
and quota pools when it can, compresses what must go to Mixer, and batches Reports with delta
encoding. This module wraps it for asyncio: `await client.check(attributes)` returns at once
on a cache hit and otherwise when Mixer answers; `client.report(attributes)` queues a report
and a timer on the running loop sends the batch after `max_batch_time_ms`. The transport (how
bytes reach Mixer) is separate: `grpc_transport.GrpcTransport` over grpc.aio, or any object
with `check(request, completion)` and `report(request, completion)`.

    from mixerclient.python.grpc_transport import connect

    async with connect("127.0.0.1:9091") as client:
        result = await client.check({"destination.service.host": "ratings.default.svc.cluster.local"})
        if not result.ok: ...  # result.http_status: 403, 429, 503, ...
        client.report({...})

Attribute values are Python values, one per Mixer transport type: str, int (INT64), float,
bool, bytes (or an `ipaddress` address: IP_ADDRESS), timezone-aware datetime (TIMESTAMP),
timedelta (DURATION) and dict[str, str] (STRING_MAP).

The client is not thread-safe: use it from the one event loop that created it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from mixerclient.python import _mixerclient

__all__ = ["CheckResult", "ClientOptions", "FakeTime", "MixerClient", "Transport"]

CheckResult = _mixerclient.CheckResult
FakeTime = _mixerclient.FakeTime
Completion = _mixerclient.Completion


class Transport(Protocol):
    """Carries serialized requests to Mixer. Each call must end with exactly one
    `completion(code, message, response_bytes)` (code 0 = OK, else a gRPC status code)."""

    def check(self, request: bytes, completion: Completion) -> None: ...

    def report(self, request: bytes, completion: Completion) -> None: ...


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """Istio's mixerclient options and defaults (include/options.h)."""

    check_num_entries: int = 10000  # 0 disables the check cache
    # With this share of an answer's uses or time left, a hit also asks Mixer again in the
    # background (0: answers just run out, as Istio's mixerclient lets them).
    check_refresh_fraction: float = 0.1
    network_fail_open: bool = True  # let requests through when Mixer cannot answer
    quota_num_entries: int = 10000  # 0 disables the quota cache
    quota_expiration_ms: int = 600000
    max_batch_entries: int = 1000
    max_batch_time_ms: int = 1000
    max_in_flight_batches: int = 8  # report batches beyond this are dropped and counted
    deduplication_id_base: str = ""  # "": a fresh UUID per client


class MixerClient:
    def __init__(
        self,
        transport: Transport,
        *,
        options: ClientOptions | None = None,
        time: FakeTime | None = None,
    ) -> None:
        options = options or ClientOptions()
        self.transport = transport
        self.options = options
        base = options.deduplication_id_base or f"{uuid.uuid4()}-"
        self._core = _mixerclient.Client(
            transport.check,
            transport.report,
            time,
            check_num_entries=options.check_num_entries,
            network_fail_open=options.network_fail_open,
            quota_num_entries=options.quota_num_entries,
            quota_expiration_ms=options.quota_expiration_ms,
            max_batch_entries=options.max_batch_entries,
            max_batch_time_ms=options.max_batch_time_ms,
            max_in_flight_batches=options.max_in_flight_batches,
            deduplication_id_base=base,
            check_refresh_fraction=options.check_refresh_fraction,
        )
        self._fake_time = time is not None
        self._timer: asyncio.TimerHandle | None = None

    async def check(
        self, attributes: Mapping[str, Any], quotas: Mapping[str, int] | None = None
    ) -> CheckResult:
        """Mixer's precondition answer (and quota) for a request with these attributes."""
        future: asyncio.Future[CheckResult] = asyncio.get_running_loop().create_future()

        def done(result: CheckResult) -> None:
            if not future.done():  # the caller may have given up (cancelled) meanwhile
                future.set_result(result)

        self._core.check(attributes, list((quotas or {}).items()), done)
        return await future

    def report(self, attributes: Mapping[str, Any]) -> None:
        """Queues a report; the batch goes out when full or `max_batch_time_ms` old."""
        self._core.report(attributes)
        self._arm_timer()

    def flush(self) -> None:
        """Sends the pending report batch now."""
        self._core.flush()

    def tick(self) -> int:
        """Sends a due batch and drops expired cache entries; returns ms until the pending
        batch is due (-1: none). The timer calls it; tests on fake time call it themselves."""
        return self._core.tick()

    def stats(self) -> dict[str, int]:
        return self._core.stats()

    def close(self) -> None:
        """Sends what is pending and stops the timer (the transport finishes the calls)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._core.flush()

    def _arm_timer(self) -> None:
        if self._timer is not None or self._fake_time:
            return
        delay = self._core.tick()
        if delay >= 0:
            self._timer = asyncio.get_running_loop().call_later(delay / 1000, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._arm_timer()
