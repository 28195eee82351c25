"""The async client of the config API, used by pilot, pilot-agent, mixer and the tools.

It speaks the Kubernetes REST paths (`/apis/<group>/<version>/namespaces/<ns>/<plural>`) that
pilot's embedded config store serves, so the same calls work against a real API server's
custom resources. Objects travel as Kubernetes JSON and become typed `Resource`s through the
shared loader, metadata (resourceVersion, uid, generation, creationTimestamp) included.

What each call sends and how its answer is read lives in pkg/kube/rest.py, shared with the
synchronous client (pkg/kube/syncclient.py); this module moves the bytes over aiohttp.
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from pkg.config.kinds import ALL, KindSchema, KindSet
from pkg.config.resource import Resource
from pkg.kube import errors, rest
from pkg.kube.rest import MERGE_PATCH, ResourceList, WatchEvent

__all__ = ["MERGE_PATCH", "ConfigClient", "ResourceList", "WatchEvent"]

T = TypeVar("T")


class ConfigClient:
    """`async with ConfigClient(url) as client:` (or call `close()` when done).

    Every method raises a `pkg.kube.errors.ApiError`: `NotFound`, `AlreadyExists`, `Conflict`,
    `Invalid`, `BadRequest`, `Gone`, or `Unavailable` when the store cannot be reached.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        kinds: KindSet = ALL,
        on_warning: rest.WarningHandler | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`token` and `ssl_context` reach an API server that wants them (a cluster's)."""
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._codec = rest.Codec(kinds, self.base_url)
        self._on_warning = on_warning
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def list(self, schema: KindSchema, namespace: str | None = None) -> ResourceList:
        """The kind's objects in one namespace, or in all when namespace is None."""
        return await self._run(rest.list_resources(self._codec, schema, namespace))

    async def get(self, schema: KindSchema, name: str, namespace: str = "default") -> Resource:
        return await self._run(rest.get(self._codec, schema, name, namespace))

    async def create(self, resource: Resource) -> Resource:
        return await self._run(rest.create(self._codec, resource))

    async def update(self, resource: Resource) -> Resource:
        """Replaces the object (PUT); a set metadata.resource_version must still be current."""
        return await self._run(rest.update(self._codec, resource))

    async def patch(
        self, schema: KindSchema, name: str, patch: dict[str, Any], namespace: str = "default"
    ) -> Resource:
        """Merges `patch` into the object (JSON merge patch, RFC 7386)."""
        return await self._run(rest.patch(self._codec, schema, name, patch, namespace))

    async def apply(self, resource: Resource, *, attempts: int = 5) -> str:
        """Create, or update from the version just read; "created", "configured" or "unchanged"."""
        return await self._run(rest.apply(self._codec, resource, attempts))

    async def delete(self, schema: KindSchema, name: str, namespace: str = "default") -> None:
        await self._run(rest.delete(schema, name, namespace))

    async def get_raw(self, path: str) -> Any:
        return await self._run(rest.raw_get(path))

    async def apply_raw(self, path: str, obj: Any, *, field_manager: str) -> Any:
        """Server-side apply at an item path (kinds this registry has no schema for)."""
        return await self._run(rest.raw_apply(path, obj, field_manager))

    async def watch(
        self,
        schema: KindSchema,
        namespace: str | None = None,
        resource_version: str = "",
        *,
        timeout_seconds: int | None = None,
    ) -> AsyncGenerator[WatchEvent, None]:
        """The kind's changes after `resource_version` (or ADDED for every object, then changes).

        Ends when the server ends the stream; raises `Gone` when the version is older than the
        server's history (list again), `Unavailable` when the connection fails or breaks. Use
        it under `contextlib.aclosing(...)` to close the connection when stopping early.
        """
        request = rest.watch_request(schema, namespace, resource_version, timeout_seconds)
        # A watch is quiet for as long as nothing changes: no read timeout, only a connect one.
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._timeout, sock_connect=self._timeout
        )
        stream = rest.WatchStream(self._codec, schema)
        try:
            async with self._open().get(
                self.base_url + request.path, headers=request.headers(), timeout=timeout
            ) as response:
                if response.status != 200:
                    rest.payload(rest.Response(response.status, await response.read()))
                async for chunk in response.content.iter_any():
                    for event in stream.feed(chunk):
                        yield event
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._unreachable(error) from None

    async def _run(self, operation: rest.Operation[T]) -> T:
        """Drives an operation: sends each request it yields, hands it the answer."""
        try:
            request = next(operation)
            while True:
                try:
                    response = await self._send(request)
                except errors.ApiError as error:
                    request = operation.throw(error)
                else:
                    request = operation.send(response)
        except StopIteration as done:
            return done.value

    async def _send(self, request: rest.Request) -> rest.Response:
        try:
            async with self._open().request(
                request.method,
                self.base_url + request.path,
                data=request.body,
                headers=self._headers(request),
                ssl=self._ssl_context if self._ssl_context is not None else True,
            ) as answer:
                response = rest.Response(
                    answer.status, await answer.read(), rest.header_pairs(answer.headers.items())
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise self._unreachable(error) from None
        rest.report_warnings(response, self._on_warning)
        return response

    def _headers(self, request: rest.Request) -> dict[str, str]:
        headers = request.headers()
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session

    def _unreachable(self, error: BaseException) -> errors.Unavailable:
        return errors.Unavailable.unreachable(self.base_url, _why(error, self._timeout))


def _why(error: BaseException, timeout: float) -> str:
    """A short reason a person can act on, instead of aiohttp's repr."""
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(error, aiohttp.ClientConnectorError):
        if error.os_error.errno == errno.ECONNREFUSED:
            return "connection refused"
        return error.os_error.strerror or str(error.os_error)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "the connection was closed before the answer was complete"
    return str(error) or type(error).__name__
