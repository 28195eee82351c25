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
import builtins
import concurrent.futures
import dataclasses
import logging
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pilot.configstore import admission, apply, managedfields, objects, status, strategy
from pilot.configstore.allocator import Allocator
from pilot.configstore.options import DEFAULT, DEFAULT_DELETE, DeleteOptions, WriteOptions
from pilot.configstore.selectors import EVERYTHING, Selector
from pilot.configstore.storage import Row, Storage
from pilot.configstore.watch import ADDED, DELETED, MODIFIED, Event, EventLog, Subscription
from pkg.config.kinds import ALL, KindSchema, KindSet

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Object = dict[str, Any]


DEFAULT_ALLOCATOR = Allocator()


@dataclasses.dataclass(frozen=True)
class StoreOptions:
    db: str | pathlib.Path
    history: int = 10_000  # events kept for watches that resume from a resourceVersion
    watch_queue_limit: int = 10_000  # live events queued per watcher before it is dropped (410)
    allocator: Allocator = DEFAULT_ALLOCATOR  # the Services' cluster IPs and node ports
    # Create the namespaces a cluster starts with (default, kube-system, kube-public).
    system_namespaces: bool = False


SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public")


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
        moved: list[tuple[Row, Row]] = []
        for row in rows:
            schema = self._kinds.by_kind(row.api_version, row.kind)
            if schema is None:
                log.warning(
                    "ignoring stored %s %s/%s: unknown kind", row.kind, row.namespace, row.name
                )
                continue
            body = row.body
            if row.api_version != schema.api_version:
                # Written when another version was the stored one: keep it at today's.
                body = {**body, "apiVersion": schema.api_version}
                moved.append(
                    (row, dataclasses.replace(row, api_version=schema.api_version, body=body))
                )
            self._objects[schema][(row.namespace, row.name)] = body
        if moved:
            await self._run(self._storage.move, moved)
            log.info("moved %d stored objects to their kinds' stored versions", len(moved))
        self._version = version
        self._log = EventLog(
            start=version,
            history=self._options.history,
            queue_limit=self._options.watch_queue_limit,
        )
        if self._options.system_namespaces:
            await self._create_system_namespaces()

    async def _create_system_namespaces(self) -> None:
        schema = self._kinds.by_kind("v1", "Namespace")
        if schema is None:
            return
        for name in SYSTEM_NAMESPACES:
            if ("", name) not in self._objects[schema]:
                body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                await self.create(schema, "", body, WriteOptions(field_manager="kube-apiserver"))

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

    def list(
        self, schema: KindSchema, namespace: str | None, selector: Selector = EVERYTHING
    ) -> tuple[list[_Object], int]:
        """The kind's objects (in one namespace, or all) that the selector matches, sorted, and
        the store's version."""
        items = [
            obj
            for (ns, _), obj in sorted(self._objects[schema].items())
            if (namespace is None or ns == namespace) and selector.matches(obj)
        ]
        return items, self._version

    def get(self, schema: KindSchema, namespace: str, name: str) -> _Object:
        found = self._objects[schema].get((namespace, name))
        if found is None:
            raise status.not_found(schema, name)
        return found

    def watch(
        self,
        schema: KindSchema,
        namespace: str | None,
        resource_version: str,
        selector: Selector = EVERYTHING,
    ) -> Subscription:
        """A subscription to the kind's changes, starting as Kubernetes does.

        "" or "0": an ADDED event for every current object, then live changes. "N": the kept
        events after N, then live changes; 410 Expired when N is older than the kept history
        (or newer than the store, e.g. a client of a store whose database was replaced).
        With a selector, an object that starts matching arrives as ADDED and one that stops
        matching as DELETED, as from a real API server.
        """
        if resource_version in ("", "0"):
            items, _ = self.list(schema, namespace)
            initial = [
                Event(ADDED, schema, obj["metadata"].get("namespace", ""), _version_of(obj), obj)
                for obj in items
            ]
            return self._log.subscribe(schema, namespace, initial, selector)
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
        return self._log.subscribe(schema, namespace, self._log.since(since), selector)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._log.unsubscribe(subscription)

    def close_watches(self) -> None:
        """Ends every watch stream cleanly (server shutdown); writes go on being accepted."""
        self._log.close_all()

    @property
    def watch_count(self) -> int:
        return self._log.subscriber_count

    # Writes: validated, serialized, durable before they are visible.

    async def create(
        self, schema: KindSchema, namespace: str, body: Any, options: WriteOptions = DEFAULT
    ) -> _Object:
        meta = body.get("metadata") if isinstance(body, dict) else None
        if isinstance(meta, dict) and not meta.get("name") and meta.get("generateName"):
            return await self._serialized(
                lambda: self._create_generated(schema, namespace, body, options)
            )
        admitted = admission.admit(self._kinds, schema, namespace, None, body)
        return await self._serialized(lambda: self._create(admitted, options))

    async def update(
        self,
        schema: KindSchema,
        namespace: str,
        name: str,
        body: Any,
        options: WriteOptions = DEFAULT,
    ) -> _Object:
        """Replaces an object at the resourceVersion the body carries (409 when it is stale).

        As for custom resources on a real server, there is no unconditional update: a body
        without a resourceVersion is refused (422), so no write can undo one it never saw.
        """
        meta = body.get("metadata") if isinstance(body, dict) else None
        # After the checks a real server makes first: the name, then that the object exists.
        if (
            isinstance(meta, dict)
            and not meta.get("resourceVersion")
            and meta.get("name", name) == name
        ):
            self.get(schema, namespace, name)
            raise status.invalid_field(
                schema,
                name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
                kind=schema.plural,
            )
        admitted = admission.admit(self._kinds, schema, namespace, name, body)
        return await self._serialized(lambda: self._replace(admitted, options))

    async def patch(
        self,
        schema: KindSchema,
        namespace: str,
        name: str,
        mutate: Callable[[_Object], Any],
        options: WriteOptions = DEFAULT,
    ) -> _Object:
        """Stores `mutate(current)`, validated like an update, the lock held in between.

        `mutate` applies the request's patch (merge or JSON patch) and raises a Status error
        when it cannot; it sees the stored object and must not change it.
        """

        async def write() -> _Object:
            patched = mutate(self.get(schema, namespace, name))
            admitted = admission.admit(self._kinds, schema, namespace, name, patched)
            return await self._replace(admitted, options)

        return await self._serialized(write)

    async def apply(
        self,
        schema: KindSchema,
        namespace: str,
        name: str,
        config: Any,
        options: WriteOptions = DEFAULT,
    ) -> tuple[_Object, bool]:
        """Server-side apply of `config` by options.field_manager; (object, created)."""
        config = apply.check_config(schema, config)
        api_version = options.api_version or schema.api_version

        async def write() -> tuple[_Object, bool]:
            live = self._objects[schema].get((namespace, name))
            planned = apply.plan(
                live, config, manager=options.field_manager, api_version=api_version
            )
            admitted = admission.admit(self._kinds, schema, namespace, name, planned.merged)
            if live is None:
                return await self._create(admitted, options, [planned.applier]), True
            new = {**admitted.resource.to_dict(), **admitted.content()}
            managers = apply.reconcile(live, new, planned, force=options.force, schema=schema)
            return await self._replace(admitted, options, managers), False

        return await self._serialized(write)

    async def delete(
        self,
        schema: KindSchema,
        namespace: str,
        name: str,
        options: DeleteOptions = DEFAULT_DELETE,
    ) -> _Object:
        """Removes an object; returns its last state, stamped with the deletion's version.

        A dry run returns the object as it is, and removes nothing.
        """
        return await self._serialized(lambda: self._remove(schema, namespace, name, options))

    async def delete_collection(
        self,
        schema: KindSchema,
        namespace: str,
        selector: Selector,
        options: DeleteOptions = DEFAULT_DELETE,
    ) -> builtins.list[_Object]:
        """Removes every object of the namespace the selector matches, one write (and one
        DELETED event) each, as Kubernetes does; returns them as `delete` does."""

        async def remove_all() -> list[_Object]:
            matching, _ = self.list(schema, namespace, selector)
            removed = []
            for obj in matching:
                meta = obj["metadata"]
                removed.append(await self._remove(schema, namespace, meta["name"], options))
            return removed

        return await self._serialized(remove_all)

    async def _remove(
        self, schema: KindSchema, namespace: str, name: str, options: DeleteOptions
    ) -> _Object:
        current = self.get(schema, namespace, name)
        meta = current["metadata"]
        objects.check_preconditions(schema, current, options)
        if options.dry_run:
            return current
        grace = objects.grace_period(schema, current, options)
        if grace is not None:
            # A running pod is deleted gracefully: marked now, removed by its kubelet once
            # its containers stopped (or with gracePeriodSeconds=0).
            marked = objects.terminating(current, grace, self._version + 1)
            if marked is None:
                return current
            await self._commit(schema, marked, self._version + 1, MODIFIED, current)
            return marked
        version = self._version + 1
        assert self._storage is not None
        await self._run(
            self._storage.delete, schema.api_version, schema.kind, namespace, name, version
        )
        del self._objects[schema][(namespace, name)]
        self._version = version
        gone = {**current, "metadata": {**meta, "resourceVersion": str(version)}}
        self._log.append(Event(DELETED, schema, namespace, version, gone, previous=current))
        return gone

    async def _create_generated(
        self, schema: KindSchema, namespace: str, body: dict[str, Any], options: WriteOptions
    ) -> _Object:
        """A create whose name the store makes from metadata.generateName, under the lock, so
        the name it picks is free when it is written."""
        taken = {name for ns, name in self._objects[schema] if ns == namespace}
        name = objects.generated_name(str(body["metadata"]["generateName"]), taken)
        named = {**body, "metadata": {**body["metadata"], "name": name}}
        admitted = admission.admit(self._kinds, schema, namespace, None, named)
        return await self._create(admitted, options)

    async def _create(
        self,
        admitted: admission.Admitted,
        options: WriteOptions,
        managers: builtins.list[managedfields.Manager] | None = None,
    ) -> _Object:
        schema, meta = admitted.resource.schema, admitted.resource.metadata
        if (meta.namespace, meta.name) in self._objects[schema]:
            raise status.already_exists(schema, meta.name)
        admitted = self._prepare(admitted, None, options)
        version = self._version + 1
        obj = objects.created(admitted, options, version, managers)
        if not options.dry_run:
            await self._commit(schema, obj, version, ADDED, None)
        return obj

    async def _replace(
        self,
        admitted: admission.Admitted,
        options: WriteOptions,
        managers: builtins.list[managedfields.Manager] | None = None,
    ) -> _Object:
        schema, meta = admitted.resource.schema, admitted.resource.metadata
        current = self.get(schema, meta.namespace, meta.name)
        if (
            meta.resource_version
            and meta.resource_version != current["metadata"]["resourceVersion"]
        ):
            raise status.conflict(
                schema,
                meta.name,
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
            )
        admitted = self._prepare(admitted, current, options)
        version = self._version + 1
        obj = objects.replaced(admitted, current, options, version, managers)
        if obj is None:
            return current
        if not options.dry_run:
            await self._commit(schema, obj, version, MODIFIED, current)
        return obj

    async def _commit(
        self,
        schema: KindSchema,
        obj: _Object,
        version: int,
        kind: str,
        previous: _Object | None,
    ) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")  # "" for a cluster-scoped kind
        assert self._storage is not None, "the store is not open"
        row = Row(schema.api_version, schema.kind, namespace, meta["name"], version, obj)
        await self._run(self._storage.put, row)
        # Durable now: make it visible, then tell the watchers.
        self._objects[schema][(namespace, meta["name"])] = obj
        self._version = version
        self._log.append(Event(kind, schema, namespace, version, obj, previous=previous))

    def _prepare(
        self, admitted: admission.Admitted, current: _Object | None, options: WriteOptions
    ) -> admission.Admitted:
        """A Kubernetes kind's write as its API server's strategy makes it (strategy.py)."""
        resource = admitted.resource
        if not resource.schema.is_kubernetes:
            return admitted
        own = (resource.metadata.namespace, resource.metadata.name)
        services = self._kinds.by_kind("v1", "Service")

        def others() -> list[_Object]:
            if services is None:
                return []
            return [o for key, o in self._objects[services].items() if key != own]

        context = strategy.Context(self._options.allocator, others, current, options.subresource)
        return strategy.prepare(admitted, context)

    async def _serialized(self, write: Callable[[], Awaitable[_T]]) -> _T:
        async def locked() -> _T:
            async with self._lock:
                return await write()

        # A client that hangs up mid-write cancels its handler, but never the write: memory
        # must follow what was committed to SQLite.
        return await asyncio.shield(locked())

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)


def _version_of(obj: _Object) -> int:
    return int(obj["metadata"]["resourceVersion"])
