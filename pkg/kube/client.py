"""The one async client of the config API, used by pilot, pilot-agent and istioctl.

It speaks the Kubernetes REST paths (`/apis/<group>/<version>/namespaces/<ns>/<plural>`) that
pilot's embedded config store serves, so the same calls work against a real API server's
custom resources. Objects travel as Kubernetes JSON and become typed `Resource`s through the
shared loader, metadata (resourceVersion, uid, generation, creationTimestamp) included.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp

from pkg.config import loader
from pkg.config.kinds import ALL, KindSchema, KindSet
from pkg.config.resource import Resource
from pkg.kube import errors

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


@dataclasses.dataclass(frozen=True)
class ResourceList:
    items: list[Resource]
    resource_version: str  # the store's version when the list was made: where a watch starts


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    resource: Resource  # the new state; for DELETED the last one, with the deletion's version


class ConfigClient:
    """`async with ConfigClient(url) as client:` (or call `close()` when done).

    Every method raises a `pkg.kube.errors.ApiError`: `NotFound`, `AlreadyExists`, `Conflict`,
    `Invalid`, `BadRequest`, `Gone`, or `Unavailable` when the store cannot be reached.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, kinds: KindSet = ALL) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._kinds = kinds
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ConfigClient:
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
        data = await self._request("GET", schema.collection_path(namespace))
        items = [r for r in (self._decode_item(schema, o) for o in data["items"]) if r]
        return ResourceList(items, str(data.get("metadata", {}).get("resourceVersion", "")))

    async def get(self, schema: KindSchema, name: str, namespace: str = "default") -> Resource:
        return self._decode(schema, await self._request("GET", _item_path(schema, namespace, name)))

    async def create(self, resource: Resource) -> Resource:
        schema, meta = resource.schema, resource.metadata
        data = await self._request(
            "POST", schema.collection_path(meta.namespace), body=resource.to_dict()
        )
        return self._decode(schema, data)

    async def update(self, resource: Resource, *, attempts: int = 5) -> Resource:
        """Replaces the object (PUT); a set metadata.resource_version must still be current.

        Without one the replace is unconditional, as `kubectl replace` makes it: the current
        version is read and sent (the server refuses a PUT without one), and a write that got
        in between is overwritten on a retry.
        """
        schema, meta = resource.schema, resource.metadata
        path = _item_path(schema, meta.namespace, meta.name)
        if meta.resource_version:
            return self._decode(schema, await self._request("PUT", path, body=resource.to_dict()))
        last: errors.ApiError | None = None
        for _ in range(attempts):
            current = await self.get(schema, meta.name, meta.namespace)
            versioned = dataclasses.replace(
                meta, resource_version=current.metadata.resource_version
            )
            body = dataclasses.replace(resource, metadata=versioned).to_dict()
            try:
                return self._decode(schema, await self._request("PUT", path, body=body))
            except errors.Conflict as error:
                last = error
        assert last is not None
        raise last

    async def patch(
        self, schema: KindSchema, name: str, patch: dict[str, Any], namespace: str = "default"
    ) -> Resource:
        """Merges `patch` into the object (JSON merge patch, RFC 7386)."""
        path = _item_path(schema, namespace, name)
        data = await self._request("PATCH", path, body=patch, content_type=MERGE_PATCH)
        return self._decode(schema, data)

    async def apply(self, resource: Resource, *, attempts: int = 5) -> str:
        """Create, or update from the version just read (`kubectl apply` without the merge).

        Returns "created", "configured" or "unchanged"; retries when another writer got in
        between the read and the write.
        """
        schema, meta = resource.schema, resource.metadata
        last: errors.ApiError | None = None
        for _ in range(attempts):
            try:
                current = await self.get(schema, meta.name, meta.namespace)
            except errors.NotFound:
                try:
                    await self.create(resource)
                    return "created"
                except errors.AlreadyExists as error:
                    last = error
                    continue
            if _same(current, resource):
                return "unchanged"
            versioned = dataclasses.replace(
                meta, resource_version=current.metadata.resource_version
            )
            try:
                await self.update(dataclasses.replace(resource, metadata=versioned))
                return "configured"
            except (errors.Conflict, errors.NotFound) as error:
                last = error
        assert last is not None
        raise last

    async def delete(self, schema: KindSchema, name: str, namespace: str = "default") -> None:
        await self._request("DELETE", _item_path(schema, namespace, name))

    async def watch(
        self,
        schema: KindSchema,
        namespace: str | None = None,
        resource_version: str = "",
        *,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """The kind's changes after `resource_version` (or ADDED for every object, then changes).

        Ends when the server ends the stream; raises `Gone` when the version is older than the
        server's history (list again), `Unavailable` when the connection fails or breaks. Use
        it under `contextlib.aclosing(...)` to close the connection when stopping early.
        """
        params = {"watch": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        # A watch is quiet for as long as nothing changes: no read timeout, only a connect one.
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._timeout, sock_connect=self._timeout
        )
        try:
            async with self._open().get(
                self._url(schema.collection_path(namespace)), params=params, timeout=timeout
            ) as response:
                if response.status != 200:
                    raise errors.from_response(response.status, await response.read())
                buffer = bytearray()
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *lines, rest = bytes(buffer).split(b"\n")
                    buffer = bytearray(rest)
                    for line in lines:
                        event = self._decode_event(schema, line)
                        if event is not None:
                            yield event
        except (aiohttp.ClientError, TimeoutError) as error:
            raise errors.Unavailable.unreachable(
                self.base_url, _why(error, self._timeout)
            ) from None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            async with self._open().request(
                method, self._url(path), data=data, headers=headers
            ) as response:
                payload = await response.read()
                if response.status >= 400:
                    raise errors.from_response(response.status, payload)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise errors.Unavailable.unreachable(
                self.base_url, _why(error, self._timeout)
            ) from None
        return json.loads(payload)

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _decode(self, schema: KindSchema, data: Any) -> Resource:
        """A server object as a typed resource; raises loader.LoadError if it does not load."""
        resource = loader.load_object(data, kinds=self._kinds, source=self.base_url)
        if resource.schema != schema:
            raise errors.ApiError(
                500, "InternalError", f"asked for a {schema.kind}, got a {resource.schema.kind}"
            )
        return resource

    def _decode_item(self, schema: KindSchema, data: Any) -> Resource | None:
        """Like _decode, but an object that no longer loads (version skew) is skipped, logged."""
        try:
            return self._decode(schema, data)
        except (loader.LoadError, errors.ApiError) as error:
            log.warning(
                "skipping a %s from %s that does not load: %s", schema.kind, self.base_url, error
            )
            return None

    def _decode_event(self, schema: KindSchema, line: bytes) -> WatchEvent | None:
        if not line.strip():
            return None
        try:
            event = json.loads(line)
            kind, obj = event["type"], event["object"]
        except (ValueError, KeyError, TypeError):
            log.warning("skipping a malformed watch event from %s: %.200r", self.base_url, line)
            return None
        if kind == "ERROR":
            raise errors.from_status(obj if isinstance(obj, dict) else {})
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return None  # BOOKMARK, or a type from a newer server
        resource = self._decode_item(schema, obj)
        return WatchEvent(kind, resource) if resource is not None else None


def _item_path(schema: KindSchema, namespace: str, name: str) -> str:
    return f"{schema.collection_path(namespace)}/{name}"


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


def _same(current: Resource, wanted: Resource) -> bool:
    return (
        current.spec == wanted.spec
        and current.metadata.labels == wanted.metadata.labels
        and current.metadata.annotations == wanted.metadata.annotations
    )
