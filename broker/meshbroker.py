"""The broker of mesh services: the `ServiceBroker` the OSB HTTP layer drives, plus what a
restart needs (resume operations left IN_PROGRESS) and housekeeping (forget tombstones)."""

from __future__ import annotations

import datetime
import logging

from broker.bindings import Bindings
from broker.instances import Instances
from broker.osb import errors, model
from broker.records import Operation, parse_time
from broker.state import Context, translated

log = logging.getLogger("broker")


class MeshBroker:
    def __init__(self, context: Context) -> None:
        self._ctx = context
        self._instances = Instances(context)
        self._bindings = Bindings(context)

    async def catalog(self) -> model.Catalog:
        if not self._ctx.view.synced.is_set():
            raise errors.ServiceUnavailable("the catalog is not loaded yet from the config store")
        return self._ctx.view.catalog().catalog

    async def provision(self, request: model.ProvisionRequest) -> model.ProvisionResult:
        return await self._instances.provision(request)

    async def update(self, request: model.UpdateRequest) -> model.OperationResult:
        return await self._instances.update(request)

    async def deprovision(self, request: model.DeprovisionRequest) -> model.OperationResult:
        return await self._instances.deprovision(request)

    async def fetch_instance(self, instance_id: str) -> model.InstanceView:
        return await self._instances.fetch(instance_id)

    async def bind(self, request: model.BindRequest) -> model.BindResult:
        return await self._bindings.bind(request)

    async def unbind(self, request: model.UnbindRequest) -> model.OperationResult:
        return await self._bindings.unbind(request)

    async def fetch_binding(self, instance_id: str, binding_id: str) -> model.BindingView:
        return await self._bindings.fetch(instance_id, binding_id)

    async def last_operation(self, request: model.LastOperationRequest) -> model.LastOperation:
        if request.binding_id is None:
            return await self._instances.last_operation(request)
        return await self._bindings.last_operation(request)

    async def fence(self) -> None:
        """Writes the broker's mesh-wide fence (refusing every binding identity not bound)."""
        with translated():
            await self._ctx.converger.converge()

    async def resume(self) -> int:
        """Starts again, in the background, every operation a previous run left IN_PROGRESS
        (the broker stopped or died during it). Returns how many."""
        instances = {
            Operation.PROVISION: self._instances._finish_provision,
            Operation.UPDATE: self._instances._finish_update,
            Operation.DEPROVISION: self._instances._finish_deprovision,
        }
        bindings = {
            Operation.BIND: self._bindings._finish_bind,
            Operation.UNBIND: self._bindings._finish_unbind,
        }
        count = 0
        with translated():
            for stored in await self._ctx.records.instances():
                op = stored.spec.last_operation
                if op.state == Operation.IN_PROGRESS and op.type in instances:
                    work = instances[op.type](stored.spec.instance_id, op.id)
                    self._ctx.background(op.id, work)
                    count += 1
            for stored in await self._ctx.records.bindings():
                op, spec = stored.spec.last_operation, stored.spec
                if op.state == Operation.IN_PROGRESS and op.type in bindings:
                    work = bindings[op.type](spec.instance_id, spec.binding_id, op.id)
                    self._ctx.background(op.id, work)
                    count += 1
        if count:
            log.info("resuming %d operation(s) left in progress", count)
        return count

    async def sweep(self, keep: datetime.timedelta) -> int:
        """Forgets tombstones (deprovisioned instances, unbound bindings) older than `keep`."""
        cutoff = datetime.datetime.now(datetime.UTC) - keep
        removed = 0
        with translated():
            async for listed in self._ctx.records.iter_all():
                if not _old_tombstone(listed.spec, cutoff):
                    continue
                spec = listed.spec
                async with self._ctx.lock(spec.instance_id):
                    # Read again under the lock: a new provision or bind may have taken its place.
                    binding_id = getattr(spec, "binding_id", None)
                    current = (
                        await self._ctx.records.binding(spec.instance_id, binding_id)
                        if binding_id is not None
                        else await self._ctx.records.instance(spec.instance_id)
                    )
                    if current is None or not _old_tombstone(current.spec, cutoff):
                        continue
                    await self._ctx.records.delete(current)
                removed += 1
            removed += await self._sweep_orphans()
        return removed

    async def _sweep_orphans(self) -> int:
        """Binding records whose instance is gone (a bind that raced a deprovision in another
        broker, which then died): they admit nothing, so only the record goes."""
        removed = 0
        live = {
            s.spec.instance_id
            for s in await self._ctx.records.instances()
            if not s.spec.deprovisioned
        }
        for stored in await self._ctx.records.bindings():
            if stored.spec.instance_id in live:
                continue
            async with self._ctx.lock(stored.spec.instance_id):
                instance = await self._ctx.records.instance(stored.spec.instance_id)
                if instance is None or instance.spec.deprovisioned:
                    await self._ctx.records.delete(stored)
                    removed += 1
        return removed


def _old_tombstone(spec, cutoff: datetime.datetime) -> bool:
    gone = getattr(spec, "deprovisioned", False) or getattr(spec, "unbound", False)
    finished = parse_time(spec.last_operation.finished)
    return bool(gone) and finished is not None and finished <= cutoff


def _conforms(broker: MeshBroker) -> model.ServiceBroker:
    return broker  # mypy checks that MeshBroker is what the HTTP layer drives
