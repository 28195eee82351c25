"""A small informer for the local platform's controllers and kubelet, on the official client.

It keeps one kind's objects (as the API server's JSON, plain dicts) current: list, watch from
the list's resourceVersion, watch again from the newest version when a stream ends, list again
on 410 Gone (telling what changed meanwhile), back off while the API server cannot be reached.
Each change is handed to `on_change(old, new)` (None for a creation's old or a deletion's
new), one at a time; `synced` is set after the first list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import types
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes.aio import watch
from kubernetes.aio.client.exceptions import ApiException

from pkg.aio.backoff import Backoff

log = logging.getLogger("kubeinformer")

Object = dict[str, Any]
Key = tuple[str, str]
OnChange = Callable[[Object | None, Object | None], Awaitable[None]]
WATCH_SECONDS = 300


def key_of(obj: Object) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclasses.dataclass
class Informer:
    """`lister`: the official client's list-for-all-namespaces method of the kind."""

    name: str
    lister: types.MethodType  # a bound method: its client's *_without_preload_content twin
    on_change: OnChange
    field_selector: str = ""
    cache: dict[Key, Object] = dataclasses.field(default_factory=dict)
    synced: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def run(self) -> None:
        backoff = Backoff(0.2, 10.0, jitter=0.2)
        version = ""
        while True:
            try:
                if not version:
                    version = await self._list()
                    self.synced.set()
                version = await self._watch(version)
                backoff.reset()
            except _Expired:
                version = ""
            except (ApiException, aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
                delay = backoff.next_delay()
                log.warning("%s: %s; retrying in %.1fs", self.name, _why(error), delay)
                await asyncio.sleep(delay)

    def get(self, namespace: str, name: str) -> Object | None:
        return self.cache.get((namespace, name))

    async def _list(self) -> str:
        kwargs = {"field_selector": self.field_selector} if self.field_selector else {}
        raw = getattr(self.lister.__self__, f"{self.lister.__name__}_without_preload_content")
        response = await raw(**kwargs)
        body = await response.read()
        if response.status != 200:
            raise ApiException(status=response.status, reason=body.decode(errors="replace"))
        listed = json.loads(body)
        fresh = {key_of(o): o for o in listed.get("items") or []}
        old = self.cache
        self.cache = fresh
        for key in sorted(old.keys() | fresh.keys()):
            before, after = old.get(key), fresh.get(key)
            if _version(before) != _version(after):
                await self._tell(before, after)
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        stream = watch.Watch(return_type="object")
        kwargs: dict[str, Any] = {
            "resource_version": version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": WATCH_SECONDS,
        }
        if self.field_selector:
            kwargs["field_selector"] = self.field_selector
        try:
            async for event in stream.stream(self.lister, **kwargs):
                if not isinstance(event, dict):
                    continue
                obj = event.get("raw_object") or {}
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                kind = event.get("type")
                if kind == "BOOKMARK":
                    continue
                key = key_of(obj)
                before = self.cache.get(key)
                if kind == "DELETED":
                    self.cache.pop(key, None)
                    await self._tell(before, None)
                else:
                    self.cache[key] = obj
                    await self._tell(before, obj)
        except ApiException as error:
            if error.status == 410:
                raise _Expired() from None
            raise
        finally:
            await stream.close()
        return version

    async def _tell(self, before: Object | None, after: Object | None) -> None:
        try:
            await self.on_change(before, after)
        except Exception:
            log.exception("%s: a handler failed", self.name)


class _Expired(Exception):
    pass


def _version(obj: Object | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("resourceVersion"))


def _why(error: BaseException) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status}: {error.reason}"
    return f"{type(error).__name__}: {error}"
