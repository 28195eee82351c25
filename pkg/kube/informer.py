"""An informer: a local, always-readable copy of some kinds, kept current by list + watch.

For each kind it lists (all namespaces), then watches from the list's resourceVersion, applying
every event to the cache and calling `on_change` (callers debounce). When the watch ends it
resumes from the last version seen; on `Gone` (history expired) it lists again; when the store
is down it keeps serving the last cache, logs once, and retries with bounded exponential
backoff, listing again once the store answers (a restarted store may have lost its history,
and a fresh list is the one point where "back in sync" is certain).

The cache is per kind, keyed by (namespace, name); `snapshot()` copies it out. Callers that
need to know what changed (not only that something did) pass `on_events`: it gets each
kind's changes as (event type, resource) pairs, from watch events and from what a relist
found different, before `on_change` is called.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable

from pkg.aio.backoff import Backoff
from pkg.config.kinds import KindSchema
from pkg.config.resource import Resource
from pkg.kube import errors
from pkg.kube.client import ConfigClient, WatchEvent

log = logging.getLogger(__name__)

OnChange = Callable[[], Awaitable[None]]
# (kind, [(ADDED | MODIFIED | DELETED, resource)]) -> None; DELETED carries the last version.
OnEvents = Callable[[KindSchema, list[tuple[str, Resource]]], Awaitable[None]]


class Informer:
    def __init__(
        self,
        client: ConfigClient,
        schemas: Iterable[KindSchema],
        on_change: OnChange | None = None,
        *,
        backoff: Backoff | None = None,
        on_events: OnEvents | None = None,
    ) -> None:
        self._client = client
        self._schemas = tuple(schemas)
        self._on_change = on_change
        self._on_events = on_events
        self._backoff = backoff or Backoff(minimum=0.2, maximum=5.0)
        self._cache: dict[KindSchema, dict[tuple[str, str], Resource]] = {
            s: {} for s in self._schemas
        }
        self._listed: set[KindSchema] = set()
        self._unavailable: set[KindSchema] = set()
        self.synced = asyncio.Event()  # set once every kind has been listed

    def has_synced(self) -> bool:
        return self.synced.is_set()

    def snapshot(self) -> dict[KindSchema, list[Resource]]:
        """Every kind's cached resources, sorted by (namespace, name); a copy to keep."""
        return {schema: self.list(schema) for schema in self._schemas}

    def list(self, schema: KindSchema, namespace: str | None = None) -> list[Resource]:
        return [
            resource
            for (ns, _), resource in sorted(self._cache[schema].items())
            if namespace is None or ns == namespace
        ]

    def get(self, schema: KindSchema, name: str, namespace: str = "default") -> Resource | None:
        return self._cache[schema].get((namespace, name))

    async def run(self) -> None:
        """Keeps the cache current until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            for schema in self._schemas:
                tasks.create_task(self._run_kind(schema), name=f"informer-{schema.plural}")

    async def _run_kind(self, schema: KindSchema) -> None:
        version = ""  # empty: list before watching
        backoff = dataclasses.replace(self._backoff)  # each kind retries on its own
        expired_again = False  # two Gone in a row with nothing between: back off
        while True:
            delay = 0.0
            try:
                if not version:
                    version = await self._relist(schema)
                    backoff.reset()
                seen = False
                async with contextlib.aclosing(self._client.watch(schema, None, version)) as events:
                    async for event in events:
                        seen = True
                        expired_again = False
                        backoff.reset()
                        version = event.resource.metadata.resource_version
                        self._apply(schema, event)
                        await self._notify(schema, [(event.type, event.resource)])
                if not seen:
                    # Ended with nothing to show: do not reconnect in a tight loop.
                    delay = backoff.next_delay()
            except errors.Gone as error:
                log.info("%s: %s; listing again", schema.plural, error.message)
                version = ""
                if expired_again:
                    delay = backoff.next_delay()
                expired_again = True
            except errors.Unavailable as error:
                self._mark_unavailable(schema, error)
                version = ""
                delay = backoff.next_delay()
            except errors.ApiError as error:
                log.error("%s: %s; retrying", schema.plural, error)
                version = ""
                delay = backoff.next_delay()
            if delay:
                await asyncio.sleep(delay)

    async def _relist(self, schema: KindSchema) -> str:
        listed = await self._client.list(schema)
        fresh = {(r.metadata.namespace, r.metadata.name): r for r in listed.items}
        old = self._cache[schema]
        changes = _differences(old, fresh)
        changed = bool(changes)
        self._cache[schema] = fresh
        self._mark_available(schema)
        self._listed.add(schema)
        if len(self._listed) == len(self._schemas) and not self.synced.is_set():
            log.info("synced %d kinds from %s", len(self._schemas), self._client.base_url)
            self.synced.set()
        if changed:
            await self._notify(schema, changes)
        return listed.resource_version

    def _apply(self, schema: KindSchema, event: WatchEvent) -> None:
        meta = event.resource.metadata
        key = (meta.namespace, meta.name)
        if event.type == "DELETED":
            self._cache[schema].pop(key, None)
        else:
            self._cache[schema][key] = event.resource

    async def _notify(
        self, schema: KindSchema, changes: builtins.list[tuple[str, Resource]]
    ) -> None:
        # A failing handler must not stop the cache from following the store.
        if self._on_events is not None:
            try:
                await self._on_events(schema, changes)
            except Exception:
                log.exception("on_events handler failed")
        if self._on_change is not None:
            try:
                await self._on_change()
            except Exception:
                log.exception("on_change handler failed")

    def _mark_unavailable(self, schema: KindSchema, error: errors.ApiError) -> None:
        if not self._unavailable:
            log.warning("%s; serving the last known config meanwhile, retrying", error)
        self._unavailable.add(schema)

    def _mark_available(self, schema: KindSchema) -> None:
        if schema in self._unavailable:
            self._unavailable.discard(schema)
            if not self._unavailable:
                log.info("reconnected to %s", self._client.base_url)


def _differences(
    old: dict[tuple[str, str], Resource], fresh: dict[tuple[str, str], Resource]
) -> list[tuple[str, Resource]]:
    """What a relist found: added, modified (another resourceVersion) and deleted."""
    changes = []
    for key, resource in fresh.items():
        before = old.get(key)
        if before is None:
            changes.append(("ADDED", resource))
        elif before.metadata.resource_version != resource.metadata.resource_version:
            changes.append(("MODIFIED", resource))
    changes += [("DELETED", r) for key, r in old.items() if key not in fresh]
    return changes
