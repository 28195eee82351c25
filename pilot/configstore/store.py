"""The config store: validated objects in memory, durable in SQLite, changes as watch events.

Reads are served from memory. Writes are serialized by one asyncio.Lock; each one validates
with the shared loader (the same code path istioctl uses), commits to SQLite on one dedicated
worker thread and only then updates memory and publishes its event. So nothing is visible,
watched or acknowledged before it is durable, and an fsync (milliseconds on a busy disk) never
stalls the event loop that serves reads and watches meanwhile.

Every object's metadata.resourceVersion is the store-wide version of its last write, as on a
real API server (the etcd revision); it only ever grows, and it is persisted with the objects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import logging
import pathlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pilot.configstore import admission, status
from pilot.configstore.mergepatch import merge_patch
from pilot.configstore.storage import Row, Storage
from pilot.configstore.watch import ADDED, DELETED, MODIFIED, Event, EventLog, Subscription
from pkg.config import loader
from pkg.config.kinds import ALL, KindSchema, KindSet
from pkg.config.resource import Resource, spec_to_dict

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Object = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class StoreOptions:
    db: str | pathlib.Path
    history: int = 10_000  # events kept for watches that resume from a resourceVersion
    watch_queue_limit: int = 10_000  # live events queued per watcher before it is dropped (410)


class Store:
    def __init__(self, *, options: StoreOptions, kinds: KindSet = ALL) -> None:
        self._options = options
        self._kinds = kinds
        self._objects: dict[KindSchema, dict[tuple[str, str], _Object]] = {s: {} for s in kinds}
        self._version = 0
        self._lock = asyncio.Lock()
        # One thread owns the SQLite connection: writes stay ordered, the loop never blocks.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="config-store-sqlite"
        )
        self._storage: Storage | None = None
        self._log = EventLog(
            start=0, history=options.history, queue_limit=options.watch_queue_limit
        )

    async def open(self) -> None:
        """Opens (or creates) the database and loads every committed object."""
        self._storage = await self._run(Storage, self._options.db)
        version, rows = await self._run(self._storage.load)
        for row in rows:
            schema = self._kinds.by_kind(row.api_version, row.kind)
            if schema is None:
                log.warning(
                    "ignoring stored %s %s/%s: unknown kind", row.kind, row.namespace, row.name
                )
                continue
            self._objects[schema][(row.namespace, row.name)] = row.body
        self._version = version
        self._log = EventLog(
            start=version,
            history=self._options.history,
            queue_limit=self._options.watch_queue_limit,
        )

    async def close(self) -> None:
        """Ends every watch, waits for the write in progress, closes the database."""
        self._log.close_all()
        async with self._lock:
            if self._storage is not None:
                await self._run(self._storage.close)
                self._storage = None
        self._executor.shutdown(wait=True)

    @property
    def resource_version(self) -> int:
        return self._version

    @property
    def kinds(self) -> KindSet:
        return self._kinds

    # Reads: from memory, never waiting for a write in progress.

    def list(self, schema: KindSchema, namespace: str | None) -> tuple[list[_Object], int]:
        """The kind's objects (in one namespace, or all), sorted, and the store's version."""
        items = [
            obj
            for (ns, _), obj in sorted(self._objects[schema].items())
            if namespace is None or ns == namespace
        ]
        return items, self._version

    def get(self, schema: KindSchema, namespace: str, name: str) -> _Object:
        found = self._objects[schema].get((namespace, name))
        if found is None:
            raise status.not_found(schema, name)
        return found

    def watch(
        self, schema: KindSchema, namespace: str | None, resource_version: str
    ) -> Subscription:
        """A subscription to the kind's changes, starting as Kubernetes does.

        "" or "0": an ADDED event for every current object, then live changes. "N": the kept
        events after N, then live changes; 410 Expired when N is older than the kept history
        (or newer than the store, e.g. a client of a store whose database was replaced).
        """
        if resource_version in ("", "0"):
            items, _ = self.list(schema, namespace)
            initial = [
                Event(ADDED, schema, obj["metadata"]["namespace"], _version_of(obj), obj)
                for obj in items
            ]
            return self._log.subscribe(schema, namespace, initial)
        try:
            since = int(resource_version)
        except ValueError:
            raise status.bad_request(f"invalid resourceVersion {resource_version!r}") from None
        if since < self._log.floor:
            raise status.expired(f"too old resource version: {since} ({self._log.floor})")
        if since > self._version:
            raise status.expired(
                f"resource version {since} is newer than the store's ({self._version}); list again"
            )
        return self._log.subscribe(schema, namespace, self._log.since(since))

    def unsubscribe(self, subscription: Subscription) -> None:
        self._log.unsubscribe(subscription)

    def close_watches(self) -> None:
        """Ends every watch stream cleanly (server shutdown); writes go on being accepted."""
        self._log.close_all()

    @property
    def watch_count(self) -> int:
        return self._log.subscriber_count

    # Writes: validated, serialized, durable before they are visible.

    async def create(self, schema: KindSchema, namespace: str, body: Any) -> _Object:
        resource = self._admit(schema, namespace, None, body)
        return await self._serialized(lambda: self._create(resource))

    async def update(self, schema: KindSchema, namespace: str, name: str, body: Any) -> _Object:
        """Replaces an object; a resourceVersion in the body must match the stored one (409)."""
        resource = self._admit(schema, namespace, name, body)
        return await self._serialized(lambda: self._replace(resource))

    async def patch(self, schema: KindSchema, namespace: str, name: str, patch: Any) -> _Object:
        """Applies a JSON merge patch; the result is validated and stored like an update."""
        if not isinstance(patch, dict):
            raise status.bad_request("a merge patch must be a JSON object")

        async def apply() -> _Object:
            merged = merge_patch(self.get(schema, namespace, name), patch)
            return await self._replace(self._admit(schema, namespace, name, merged))

        return await self._serialized(apply)

    async def delete(self, schema: KindSchema, namespace: str, name: str) -> _Object:
        """Removes an object; returns its last state, stamped with the deletion's version."""

        async def remove() -> _Object:
            current = self.get(schema, namespace, name)
            version = self._version + 1
            assert self._storage is not None
            await self._run(
                self._storage.delete, schema.api_version, schema.kind, namespace, name, version
            )
            del self._objects[schema][(namespace, name)]
            self._version = version
            gone = {**current, "metadata": {**current["metadata"], "resourceVersion": str(version)}}
            self._log.append(Event(DELETED, schema, namespace, version, gone))
            return gone

        return await self._serialized(remove)

    async def _create(self, resource: Resource) -> _Object:
        schema, meta = resource.schema, resource.metadata
        if (meta.namespace, meta.name) in self._objects[schema]:
            raise status.already_exists(schema, meta.name)
        version = self._version + 1
        stored = dataclasses.replace(
            meta,
            resource_version=str(version),
            generation=1,
            creation_timestamp=_now(),
            uid=str(uuid.uuid4()),
        )
        obj = dataclasses.replace(resource, metadata=stored).to_dict()
        await self._commit(schema, obj, version, ADDED)
        return obj

    async def _replace(self, resource: Resource) -> _Object:
        schema, meta = resource.schema, resource.metadata
        current = self.get(schema, meta.namespace, meta.name)
        current_meta = current["metadata"]
        if meta.resource_version and meta.resource_version != current_meta["resourceVersion"]:
            raise status.conflict(
                schema,
                meta.name,
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
            )
        spec = spec_to_dict(resource.spec)
        spec_changed = spec != current.get("spec", {})
        if (
            not spec_changed
            and meta.labels == current_meta.get("labels", {})
            and meta.annotations == current_meta.get("annotations", {})
        ):
            return current  # nothing changed: no write, no event, same version (as Kubernetes)
        version = self._version + 1
        stored = dataclasses.replace(
            meta,
            resource_version=str(version),
            generation=current_meta.get("generation", 1) + (1 if spec_changed else 0),
            creation_timestamp=current_meta.get("creationTimestamp", ""),
            uid=current_meta.get("uid", ""),
        )
        obj = dataclasses.replace(resource, metadata=stored).to_dict()
        await self._commit(schema, obj, version, MODIFIED)
        return obj

    async def _commit(self, schema: KindSchema, obj: _Object, version: int, kind: str) -> None:
        meta = obj["metadata"]
        assert self._storage is not None, "the store is not open"
        row = Row(schema.api_version, schema.kind, meta["namespace"], meta["name"], version, obj)
        await self._run(self._storage.put, row)
        # Durable now: make it visible, then tell the watchers.
        self._objects[schema][(meta["namespace"], meta["name"])] = obj
        self._version = version
        self._log.append(Event(kind, schema, meta["namespace"], version, obj))

    async def _serialized(self, write: Callable[[], Awaitable[_T]]) -> _T:
        async def locked() -> _T:
            async with self._lock:
                return await write()

        # A client that hangs up mid-write cancels its handler, but never the write: memory
        # must follow what was committed to SQLite.
        return await asyncio.shield(locked())

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _admit(self, schema: KindSchema, namespace: str, name: str | None, body: Any) -> Resource:
        """The body as a validated resource of `schema` at the request's path, or a Status error.

        Disagreements with the path are the client's bug (400); problems in the object itself
        are the loader's (422, its message verbatim), and nothing is stored.
        """
        if not isinstance(body, dict):
            raise status.bad_request("the request body must be a JSON object")
        body = dict(body)
        api_version = body.setdefault("apiVersion", schema.api_version)
        kind = body.setdefault("kind", schema.kind)
        if api_version != schema.api_version:
            raise status.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({schema.api_version})"
            )
        if kind != schema.kind:
            raise status.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({schema.kind})"
            )
        meta = body.get("metadata")
        if meta is None and name is not None:
            meta = {}
        if isinstance(meta, dict):
            meta = dict(meta)
            if meta.get("namespace", namespace) != namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            if name is not None and meta.setdefault("name", name) != name:
                raise status.bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the "
                    f"URL ({name})"
                )
            body["metadata"] = meta
        found: list[loader.DocumentError] = []
        try:
            resource = loader.load_object(
                body, kinds=self._kinds, namespace=namespace, source="<request>", warnings=found
            )
        except loader.LoadError as error:
            shown = name or (meta.get("name") if isinstance(meta, dict) else None) or ""
            raise status.invalid(schema, str(shown), error) from None
        admission.warn(
            f"{p.path}: {p.message}" if p.path else p.message
            for document in found
            for p in document.problems
        )
        return resource


def _version_of(obj: _Object) -> int:
    return int(obj["metadata"]["resourceVersion"])


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
