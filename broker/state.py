"""What every broker operation shares: the records, the view of the mesh, the CA, the
converger, one lock per instance, and the owner of background operations.

One lock per instance serializes this process's requests for an instance and its bindings
(fewer conflicts, clearer answers). Across processes the records' resourceVersions decide:
every record change is read-modify-write, retried on a conflict, and every change that
matters to the mesh is followed by a converge (converge.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

from api.broker.v1alpha1 import service_binding_pb2, service_instance_pb2
from broker import names
from broker.converge import Converger
from broker.identity import Issuer
from broker.osb import errors
from broker.records import Records, Stored
from broker.view import MeshView
from pkg.ca import client as ca_client
from pkg.kube import errors as kube_errors

log = logging.getLogger("broker")

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]
DEFAULT_BINDING_TTL = datetime.timedelta(hours=24)
ATTEMPTS = 10
InstanceChange = Callable[[service_instance_pb2.ServiceInstance], bool | None]
BindingChange = Callable[[service_binding_pb2.ServiceBinding], bool | None]


@dataclasses.dataclass
class Context:
    records: Records
    view: MeshView
    issuer: Issuer
    converger: Converger
    spawn: Spawn
    _locks: dict[str, tuple[asyncio.Lock, int]] = dataclasses.field(default_factory=dict)
    _running: dict[str, asyncio.Task[None]] = dataclasses.field(default_factory=dict)

    @property
    def settings(self):
        return self.converger.settings

    @contextlib.asynccontextmanager
    async def lock(self, instance_id: str) -> AsyncIterator[None]:
        key = names.instance_key(instance_id)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def background(self, operation_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Runs `work` as the server's task, unless that operation is already running."""
        if operation_id in self._running:
            work.close()
            return
        task = self.spawn(work, f"operation-{operation_id}")
        self._running[operation_id] = task
        task.add_done_callback(lambda _: self._running.pop(operation_id, None))

    async def change_instance(self, instance_id: str, change: InstanceChange) -> Stored | None:
        """Read, `change(spec)` in place, write; again on a conflict. `change` may raise an
        OsbError to give up, or return False to leave the record as it is. None: no record."""
        for _ in range(ATTEMPTS):
            stored = await self.records.instance(instance_id)
            if stored is None:
                return None
            spec = service_instance_pb2.ServiceInstance()
            spec.CopyFrom(stored.spec)
            if change(spec) is False or spec == stored.spec:
                return stored
            try:
                return await self.records.update(stored, spec)
            except kube_errors.Conflict:
                continue
        raise errors.ConcurrencyError(f"instance {instance_id!r} kept changing; try again")

    async def change_binding(
        self, instance_id: str, binding_id: str, change: BindingChange
    ) -> Stored | None:
        for _ in range(ATTEMPTS):
            stored = await self.records.binding(instance_id, binding_id)
            if stored is None:
                return None
            spec = service_binding_pb2.ServiceBinding()
            spec.CopyFrom(stored.spec)
            if change(spec) is False or spec == stored.spec:
                return stored
            try:
                return await self.records.update(stored, spec)
            except kube_errors.Conflict:
                continue
        raise errors.ConcurrencyError(f"binding {binding_id!r} kept changing; try again")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """The config store's and the CA's failures, as the OSB answers they call for."""
    try:
        yield
    except kube_errors.Unavailable as error:
        raise errors.ServiceUnavailable(str(error)) from None
    except (kube_errors.Conflict, kube_errors.AlreadyExists) as error:
        raise errors.ConcurrencyError(
            f"another request changed the same record meanwhile ({error.message}); try again"
        ) from None
    except kube_errors.ApiError as error:
        raise errors.OsbError(f"the config store refused a write: {error}") from None
    except ca_client.CaError as error:
        raise errors.ServiceUnavailable(f"the CA did not issue a certificate: {error}") from None
