"""A small synchronous client of the config API on http.client, for command-line tools.

The same operations as the async `ConfigClient` (pkg/kube/rest.py holds their logic), without
asyncio or aiohttp, whose imports alone cost more than istioctl's whole `get`. One HTTP/1.1
connection is kept open for the client's life.

    with SyncConfigClient(url) as client:
        client.get(schema, "reviews", "default")

Every method raises a `pkg.kube.errors.ApiError`; `Unavailable` when the store cannot be
reached.
"""

from __future__ import annotations

import http.client
import urllib.parse
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from pkg.config.kinds import ALL, KindSchema, KindSet
from pkg.config.resource import Resource
from pkg.kube import errors, rest

if TYPE_CHECKING:
    import ssl

T = TypeVar("T")

# A reused keep-alive connection the server closed meanwhile fails like this before any
# answer: the request was not processed, so sending it again on a new connection is safe.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class SyncConfigClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        kinds: KindSet = ALL,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_warning: rest.WarningHandler | None = None,
        validate: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        url = urllib.parse.urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port
        self._prefix = url.path  # an API server behind a path (kubectl proxy --api-prefix)
        self._timeout = timeout
        self._token = token
        self._ssl_context = ssl_context
        self._on_warning = on_warning
        self._codec = rest.Codec(kinds, self.base_url, validate=validate)
        self._connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> SyncConfigClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def list(self, schema: KindSchema, namespace: str | None = None) -> rest.ResourceList:
        return self._run(rest.list_resources(self._codec, schema, namespace))

    def get(self, schema: KindSchema, name: str, namespace: str = "default") -> Resource:
        return self._run(rest.get(self._codec, schema, name, namespace))

    def create(self, resource: Resource) -> Resource:
        return self._run(rest.create(self._codec, resource))

    def update(self, resource: Resource) -> Resource:
        return self._run(rest.update(self._codec, resource))

    def patch(
        self, schema: KindSchema, name: str, body: dict[str, Any], namespace: str = "default"
    ) -> Resource:
        return self._run(rest.patch(self._codec, schema, name, body, namespace))

    def apply(self, resource: Resource, *, attempts: int = 5) -> str:
        return self._run(rest.apply(self._codec, resource, attempts))

    def delete(self, schema: KindSchema, name: str, namespace: str = "default") -> None:
        self._run(rest.delete(schema, name, namespace))

    def get_raw(self, path: str, accept: str = rest.JSON) -> Any:
        return self._run(rest.raw_get(path, accept))

    def _run(self, operation: rest.Operation[T]) -> T:
        """Drives an operation: sends each request it yields, hands it the answer."""
        try:
            request = next(operation)
            while True:
                try:
                    response = self._send(request)
                except errors.ApiError as error:
                    request = operation.throw(error)
                else:
                    request = operation.send(response)
        except StopIteration as done:
            return done.value

    def _send(self, request: rest.Request) -> rest.Response:
        headers = request.headers()
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._open()
            try:
                connection.request(
                    request.method, self._prefix + request.path, body=request.body, headers=headers
                )
                answer = connection.getresponse()
                response = rest.Response(answer.status, answer.read(), answer.getheaders())
            except _STALE as error:
                self.close()
                if reused and attempt == 1:
                    continue
                raise self._unreachable(error) from None
            except (OSError, http.client.HTTPException) as error:
                self.close()
                raise self._unreachable(error) from None
            if answer.will_close:
                self.close()
            rest.report_warnings(response, self._on_warning)
            return response
        raise AssertionError("unreachable")

    def _open(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._ssl_context
                )
            else:
                self._connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._connection

    def _unreachable(self, error: BaseException) -> errors.Unavailable:
        return errors.Unavailable.unreachable(
            self.base_url, errors.transport_reason(error, self._timeout)
        )
