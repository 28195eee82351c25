"""The narrow slice of Consul's HTTP API the registry reads, over py-consul's asyncio client.

Two blocking queries: the catalog's service names, and one service's instances with their
health checks. Indexes come back as numbers (py-consul hands them over as strings, which
compare wrongly: "10" < "9"), and every failure is one `ConsulUnavailable`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import consul
import consul.aio
import durationpy


class ConsulUnavailable(RuntimeError):
    """Consul could not be reached or gave an answer that is not Consul's."""


@dataclasses.dataclass(frozen=True)
class Indexed:
    index: int
    value: Any


class CatalogClient(Protocol):
    async def services(self, index: int, wait: str) -> Indexed:
        """`{name: [tags]}` of the catalog, blocking while the index is still `index`."""
        ...

    async def health(self, service: str, index: int, wait: str) -> Indexed:
        """The service's `[{Node, Service, Checks}]`, blocking while the index is `index`."""
        ...

    async def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class ConsulAddress:
    host: str
    port: int
    scheme: str = "http"
    token: str | None = None

    @classmethod
    def parse(cls, url: str) -> ConsulAddress:
        """Istio's --consulserverURL: `http://127.0.0.1:8500` (scheme and port optional)."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "http", url
        hostport = rest.split("/", 1)[0]
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"consul server URL {url!r}: want http[s]://host[:port]")
        return cls(host=host, port=int(port) if port else 8500, scheme=scheme)


class PyConsulClient:
    """CatalogClient on `consul.aio.Consul`; `timeout` bounds a call beyond its `wait`."""

    def __init__(self, address: ConsulAddress, *, timeout: float = 10.0) -> None:
        self._address = address
        self._timeout = timeout
        self._client: consul.aio.Consul | None = None  # made in the loop that uses it

    @property
    def _consul(self) -> consul.aio.Consul:
        if self._client is None:
            a = self._address
            self._client = consul.aio.Consul(
                host=a.host, port=a.port, scheme=a.scheme, token=a.token
            )
        return self._client

    async def services(self, index: int, wait: str) -> Indexed:
        result = await self._call(
            self._consul.catalog.services, wait, index=_index(index), wait=wait
        )
        _expect(isinstance(result.value, Mapping), "catalog services is not an object")
        return result

    async def health(self, service: str, index: int, wait: str) -> Indexed:
        result = await self._call(
            self._consul.health.service, wait, service, index=_index(index), wait=wait
        )
        _expect(isinstance(result.value, Sequence), f"health of {service} is not a list")
        return result

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _call(self, method: Any, blocking: str, *args: Any, **kwargs: Any) -> Indexed:
        limit = (
            self._timeout + durationpy.from_str(blocking).total_seconds() * 17 / 16
        )  # Consul adds up to wait/16 jitter
        try:
            async with asyncio.timeout(limit):
                index, value = await method(*args, **kwargs)
            return Indexed(int(index), value)
        except (consul.ConsulException, aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ConsulUnavailable(f"{type(error).__name__}: {error}") from error


def _index(index: int) -> str | None:
    # py-consul adds ?index=&wait= only for a truthy index: 0 asks without blocking.
    return str(index) if index > 0 else None


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise ConsulUnavailable(f"unexpected answer: {what}")
