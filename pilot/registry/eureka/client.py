"""The narrow slice of Eureka's REST API the registry reads, over py-eureka-client.

Two reads, through the client's documented functions: the full registry (`GET /apps/`) and
the recent changes (`GET /apps/delta`). py-eureka-client sends no Accept header, so Eureka
answers in XML, which is what the client parses. On top of the client's HTTP layer the full
read sends `If-None-Match` with the last ETag, so an unchanged registry costs a 304, not a
body. Every failure is one `EurekaUnavailable`; a disabled delta is `DeltaUnavailable`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.error
from typing import Any, Protocol
from xml.etree.ElementTree import ParseError

from py_eureka_client import eureka_basic, http_client

from pilot.registry.eureka.conversion import EurekaInstance, from_client


class EurekaUnavailable(RuntimeError):
    """Eureka could not be reached or answered with something that is not a registry."""


class DeltaUnavailable(EurekaUnavailable):
    """The server refuses deltas (403 when `disableDelta` is set): read the full registry."""


@dataclasses.dataclass(frozen=True)
class Registry:
    """One read of the registry (or of its recent changes)."""

    instances: tuple[EurekaInstance, ...]
    actions: tuple[str, ...]  # each instance's actionType (deltas: ADDED|MODIFIED|DELETED)
    apps_hashcode: str
    versions_delta: str


class RegistryClient(Protocol):
    async def applications(self, *, if_changed: bool) -> Registry | None:
        """The full registry; with `if_changed`, None when it has not changed since the last
        full read (a 304)."""
        ...

    async def delta(self) -> Registry: ...


class _ConditionalHttpClient(http_client.HttpClient):
    """py-eureka-client's HTTP layer, adding If-None-Match for URLs that answered an ETag."""

    def __init__(self) -> None:
        self.etags: dict[str, str] = {}

    async def urlopen(
        self, request: Any = None, data: bytes | None = None, timeout: float | None = None
    ) -> http_client.HttpResponse:
        if isinstance(request, str):
            request = http_client.HttpRequest(request)
        url = request.url
        if url in self.etags:
            request.add_header("If-None-Match", self.etags[url])
        response = await super().urlopen(request, data=data, timeout=timeout)
        etag = response.raw_response.headers.get("ETag") if response.raw_response else None
        if etag:
            self.etags[url] = etag
        return response


_HTTP = _ConditionalHttpClient()


class PyEurekaClient:
    """RegistryClient on `py_eureka_client.eureka_basic`; `url` is the prefix with `/eureka/`."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self._timeout = timeout
        if http_client.http_client is not _HTTP:
            http_client.set_http_client(_HTTP)

    async def applications(self, *, if_changed: bool) -> Registry | None:
        if not if_changed:
            _HTTP.etags.pop(self.url + "apps/", None)
        try:
            return _registry(await self._read(eureka_basic.get_applications))
        except urllib.error.HTTPError as error:
            if error.code == 304:
                return None
            raise EurekaUnavailable(f"GET {self.url}apps/: HTTP {error.code}") from error

    async def delta(self) -> Registry:
        try:
            return _registry(await self._read(eureka_basic.get_delta))
        except urllib.error.HTTPError as error:
            if error.code == 403:
                raise DeltaUnavailable(f"GET {self.url}apps/delta: 403") from error
            raise EurekaUnavailable(f"GET {self.url}apps/delta: HTTP {error.code}") from error

    async def _read(self, read: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                applications = await read(self.url)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, ParseError, ValueError, KeyError, TimeoutError) as error:
            raise EurekaUnavailable(f"{self.url}: {type(error).__name__}: {error}") from error
        if applications is None:
            raise EurekaUnavailable(f"{self.url}: the answer is not an <applications> document")
        return applications


def _registry(applications: Any) -> Registry:
    instances, actions = [], []
    for app in applications.applications:
        for instance in app.instances:
            instances.append(from_client(app.name, instance))
            actions.append(str(instance.actionType or "ADDED").upper())
    return Registry(
        instances=tuple(instances),
        actions=tuple(actions),
        apps_hashcode=applications.apps__hashcode or "",
        versions_delta=applications.versions__delta or "",
    )
