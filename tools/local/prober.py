"""Readiness probes, as the kubelet runs them: HTTP GET or a TCP connect to the pod's address.

A container without a readiness probe is ready once it runs. One with a probe is ready after
`successThreshold` successes in a row and not ready after `failureThreshold` failures, probed
every `periodSeconds` from `initialDelaySeconds` after it started, each probe bounded by
`timeoutSeconds`. (Exec probes would run a command in the container: not supported here; such
a container is taken as ready once it runs.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import aiohttp


@dataclasses.dataclass
class Probe:
    spec: Mapping[str, Any]
    ports: Mapping[str, int]  # the container's named ports, for a probe that names one
    ready: bool = False
    successes: int = 0
    failures: int = 0
    last: float = 0.0

    def due(self, started_at: float, now: float) -> bool:
        delay = float(self.spec.get("initialDelaySeconds") or 0)
        period = float(self.spec.get("periodSeconds") or 10)
        return now >= started_at + delay and now - self.last >= period

    async def run(self, address: str, session: aiohttp.ClientSession) -> None:
        self.last = time.time()
        ok = await _check(self.spec, self.ports, address, session)
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.spec.get("successThreshold") or 1):
                self.ready = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= int(self.spec.get("failureThreshold") or 3) or not self.ready:
                self.ready = False

    def reset(self) -> None:
        """The container restarted: not ready until probed again."""
        self.ready, self.successes, self.failures, self.last = False, 0, 0, 0.0


def _port(value: Any, ports: Mapping[str, int]) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return ports.get(str(value))


async def _check(
    spec: Mapping[str, Any], ports: Mapping[str, int], address: str, session: aiohttp.ClientSession
) -> bool:
    timeout = float(spec.get("timeoutSeconds") or 1)
    if isinstance(spec.get("httpGet"), Mapping):
        get = spec["httpGet"]
        port = _port(get.get("port"), ports)
        if port is None:
            return False
        scheme = str(get.get("scheme") or "HTTP").lower()
        host = get.get("host") or address
        path = get.get("path") or "/"
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or [] if "name" in h}
        try:
            async with session.get(
                f"{scheme}://{host}:{port}{path}",
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                ssl=False,
            ) as answer:
                return 200 <= answer.status < 400
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False
    if isinstance(spec.get("tcpSocket"), Mapping):
        port = _port(spec["tcpSocket"].get("port"), ports)
        if port is None:
            return False
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(
                    spec["tcpSocket"].get("host") or address, port
                )
            writer.close()
            return True
        except (TimeoutError, OSError):
            return False
    return True  # exec (or grpc) probes: not run here
