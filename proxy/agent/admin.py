"""A client of Envoy's admin API, for the few questions the agent asks its Envoy."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp


class AdminUnavailable(Exception):
    """Envoy's admin endpoint did not answer (not started yet, restarting, or gone)."""


@dataclasses.dataclass(frozen=True)
class ListenerState:
    """One dynamic (LDS) listener as Envoy holds it."""

    name: str
    address: str
    port: int
    active: bool  # serving; False while warming or after a rejected update


class AdminClient:
    """Talks to one Envoy's admin listener (`http://<ip>:15000`); use as `async with`."""

    def __init__(self, base_url: str, *, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        # A readiness probe must not wait on a pooled connection to a dead Envoy: no pooling.
        connector = aiohttp.TCPConnector(force_close=True)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str) -> tuple[int, str]:
        if self._session is None:
            raise RuntimeError("AdminClient used outside `async with`")
        try:
            async with self._session.request(method, self.base_url + path) as response:
                return response.status, await response.text()
        except (TimeoutError, aiohttp.ClientError) as error:
            raise AdminUnavailable(
                f"{method} {self.base_url}{path}: {error or type(error).__name__}"
            ) from error

    async def _json(self, path: str) -> Any:
        status, text = await self._request("GET", path)
        if status != 200:
            raise AdminUnavailable(f"GET {self.base_url}{path}: HTTP {status}: {text.strip()}")
        try:
            return json.loads(text)
        except ValueError as error:
            raise AdminUnavailable(f"GET {self.base_url}{path}: not JSON: {error}") from error

    async def server_state(self) -> str:
        """`/ready`'s answer: LIVE, PRE_INITIALIZING, INITIALIZING or DRAINING."""
        _, text = await self._request("GET", "/ready")
        return text.strip()

    async def stats(self, pattern: str) -> dict[str, int]:
        """Counters and gauges whose names match the regular expression `pattern`."""
        data = await self._json(f"/stats?format=json&filter={quote(pattern, safe='')}")
        return {
            stat["name"]: stat["value"]
            for stat in data.get("stats", [])
            if isinstance(stat.get("value"), int)
        }

    async def dynamic_listeners(self) -> list[ListenerState]:
        """The listeners Pilot sent, telling serving ones from warming or rejected ones.

        `/listeners` lists warming listeners too, so this reads the config dump instead.
        """
        data = await self._json("/config_dump?resource=dynamic_listeners")
        listeners = []
        for entry in data.get("configs", []):
            state = entry.get("active_state") or entry.get("warming_state") or {}
            socket = state.get("listener", {}).get("address", {}).get("socket_address", {})
            listeners.append(
                ListenerState(
                    name=entry.get("name", ""),
                    address=socket.get("address", ""),
                    port=int(socket.get("port_value", 0)),
                    active="active_state" in entry,
                )
            )
        return listeners

    async def drain_listeners(self) -> None:
        """Starts Envoy's graceful drain: connections are asked to close (`--drain-time-s`)."""
        status, text = await self._request("POST", "/drain_listeners?graceful")
        if status != 200:
            raise AdminUnavailable(f"drain_listeners: HTTP {status}: {text.strip()}")

    async def active_connections(self, *, ignore_ports: Collection[int] = ()) -> int:
        """Open downstream connections on all listeners but admin and `ignore_ports`."""
        stats = await self.stats(r"^listener\..*\.downstream_cx_active$")
        total = 0
        for name, value in stats.items():
            match = _LISTENER_STAT.fullmatch(name)
            if match is None or match.group("address") == "admin":
                continue  # per-worker copies and the admin listener (our own polling)
            if int(match.group("port")) not in ignore_ports:
                total += value
        return total


# `listener.<ip>_<port>.downstream_cx_active`; per-worker copies carry `.worker_N` as well.
_LISTENER_STAT = re.compile(
    r"listener\.(?P<address>admin|[^_]+_(?P<port>\d+))\.downstream_cx_active"
)
