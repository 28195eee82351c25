"""Service instances: provision, update, deprovision, fetch, and their last operation.

Every change is written as intent first: the record, with the operation IN_PROGRESS and
every resource the instance may own listed, goes to the store before any mesh resource is
touched; then the converger makes the mesh match; then the operation is settled in the
record. A broker that dies half way leaves a record saying exactly what to finish (it
resumes on start) or what to remove, never an orphan.
"""

from __future__ import annotations

import logging

from api.broker.v1alpha1 import service_instance_pb2
from broker import catalog, operations, target
from broker.operations import finish, running, struct
from broker.osb import errors, model
from broker.records import Operation, Stored
from broker.state import Context, translated
from pkg.kube import errors as kube_errors

log = logging.getLogger("broker")


class Instances:
    def __init__(self, context: Context) -> None:
        self._ctx = context

    # Provision.

    async def provision(self, request: model.ProvisionRequest) -> model.ProvisionResult:
        index = self._ctx.view.catalog()
        entry = _plan_of(index, request.service_id, request.plan_id)
        if request.maintenance_info_version is not None:
            raise errors.MaintenanceInfoConflict(
                f"plan {request.plan_id!r} declares no maintenance_info, but the request has "
                f"version {request.maintenance_info_version!r}; fetch the catalog again"
            )
        asynchronous = entry.provisioning.asynchronous
        if asynchronous and not request.accepts_incomplete:
            raise errors.AsyncRequired(_async_required(entry.plan.name))
        with translated():
            async with self._ctx.lock(request.instance_id):
                stored = await self._ctx.records.instance(request.instance_id)
                if stored is not None and not _restartable(stored.spec):
                    return _provision_again(stored.spec, request)
                return await self._provision(request, index, entry, stored, asynchronous)

    async def _provision(
        self,
        request: model.ProvisionRequest,
        index: catalog.CatalogIndex,
        entry: catalog.PlanEntry,
        stored: Stored | None,
        asynchronous: bool,
    ) -> model.ProvisionResult:
        offering = index.offerings[request.service_id]
        try:
            found = target.resolve(offering, self._ctx.view.service_entries())
        except target.TargetError as error:
            raise errors.Unprocessable(str(error), error="ServiceNotInMesh") from None
        op = operations.start(Operation.PROVISION, request.info, asynchronous=asynchronous)
        record = service_instance_pb2.ServiceInstance(
            instance_id=request.instance_id,
            service_id=request.service_id,
            plan_id=request.plan_id,
            parameters=struct(request.parameters),
            context=struct(request.context),
            organization_guid=request.organization_guid,
            space_guid=request.space_guid,
            target=found,
            provisioning=entry.provisioning,
            last_operation=op,
        )
        if request.info.originating_identity is not None:
            record.originating_identity.CopyFrom(op.originating_identity)
        record.resources.extend(self._ctx.converger.desired_refs(request.instance_id, record))
        await self._write(request.instance_id, stored, record)
        log.info(
            "provisioning instance %r (%s, plan %s) for %s: %s",
            request.instance_id,
            offering.service.name,
            entry.plan.name,
            _who(request.info),
            op.id,
        )
        if asynchronous:
            self._ctx.background(op.id, self._finish_provision(request.instance_id, op.id))
            return model.ProvisionResult(model.Outcome.ACCEPTED, operation=op.id)
        try:
            await self._ctx.converger.converge(request.instance_id)
            await self._settle(request.instance_id, op.id)
        except Exception as error:
            # (A cancelled request is left IN_PROGRESS instead: the next start finishes it.)
            await self._undo(request.instance_id, op.id, str(error))
            raise
        return model.ProvisionResult(model.Outcome.CREATED)

    async def _write(
        self, instance_id: str, stored: Stored | None, record: service_instance_pb2.ServiceInstance
    ) -> None:
        if stored is not None:  # a tombstone or a failed provision: start again in its place
            await self._ctx.records.update(stored, record)
            return
        try:
            await self._ctx.records.create_instance(instance_id, record)
        except kube_errors.AlreadyExists:
            raise errors.ConcurrencyError(
                f"instance {instance_id!r} is being provisioned by another request"
            ) from None

    async def _undo(self, instance_id: str, op_id: str, why: str) -> None:
        """A synchronous provision failed: a tombstone says so, and its resources go."""

        def give_up(record: service_instance_pb2.ServiceInstance) -> bool | None:
            if not running(record.last_operation, op_id):
                return False
            record.deprovisioned = True
            finish(record.last_operation, failed=f"provisioning failed: {why}")
            return None

        try:
            with translated():
                await self._ctx.change_instance(instance_id, give_up)
                await self._ctx.converger.converge(instance_id)
        except errors.OsbError:
            log.exception("could not undo the failed provision of %r", instance_id)

    async def _finish_provision(self, instance_id: str, op_id: str) -> None:
        """The background half of an asynchronous provision: resources, then a workload."""
        failed = ""
        try:
            with translated():
                stored = await self._ctx.records.instance(instance_id)
                if stored is None or not running(stored.spec.last_operation, op_id):
                    return
                async with self._ctx.lock(instance_id):
                    await self._ctx.converger.converge(instance_id)
                record = stored.spec
                timeout = catalog.ready_timeout(record.provisioning)
                ready = await self._ctx.view.wait_for(
                    lambda: bool(
                        target.workloads(record.target, self._ctx.view.workload_entries())
                    ),
                    timeout,
                )
                if not ready:
                    failed = f"no workload of {record.target.host} registered within {timeout}s"
        except errors.OsbError as error:
            failed = error.description
        await self._conclude(instance_id, op_id, failed)

    async def _settle(self, instance_id: str, op_id: str, failed: str = "") -> None:
        """Ends operation `op_id` in the record (if it is still the running one). The caller
        holds the instance's lock."""

        def settle(record: service_instance_pb2.ServiceInstance) -> bool | None:
            op = record.last_operation
            if not running(op, op_id):
                return False
            if not failed:
                if op.type == Operation.DEPROVISION:
                    record.deprovisioned = True  # its resource list stays: all deleted
                    del record.bound_identities[:]
                else:
                    converger = self._ctx.converger
                    del record.resources[:]
                    record.resources.extend(converger.desired_refs(instance_id, record))
            finish(op, failed=failed)
            return None

        await self._ctx.change_instance(instance_id, settle)

    async def _conclude(self, instance_id: str, op_id: str, failed: str = "") -> None:
        """_settle, under the lock, for background operations: failures are logged."""
        try:
            with translated():
                async with self._ctx.lock(instance_id):
                    await self._settle(instance_id, op_id, failed)
        except errors.OsbError as error:
            log.error("could not record the end of %s for %r: %s", op_id, instance_id, error)
            return
        log.info("%s for instance %r: %s", op_id, instance_id, failed or "succeeded")

    # Update.

    async def update(self, request: model.UpdateRequest) -> model.OperationResult:
        index = self._ctx.view.catalog()
        with translated():
            async with self._ctx.lock(request.instance_id):
                stored = await self._existing(request.instance_id, refuse=errors.Unprocessable)
                record = stored.spec
                if request.service_id != record.service_id:
                    raise errors.BadRequest(
                        _mismatch("service_id", request.service_id, record.service_id)
                    )
                op = record.last_operation
                if op.state == Operation.IN_PROGRESS:
                    if (
                        op.type == Operation.UPDATE
                        and op.asynchronous
                        and _same_update(op, request)
                    ):
                        return model.OperationResult(model.Outcome.ACCEPTED, operation=op.id)
                    raise errors.ConcurrencyError(_busy(request.instance_id, op))
                if op.type == Operation.PROVISION and op.state == Operation.FAILED:
                    raise errors.Unprocessable(
                        f"instance {request.instance_id!r} failed to provision "
                        f"({op.description}); deprovision it, or provision it again",
                        error="InstanceNotUsable",
                    )
                plan_id = request.plan_id or record.plan_id
                entry = index.plan(record.service_id, plan_id)
                if entry is None and request.plan_id is not None:
                    raise errors.BadRequest(_unknown_plan(index, record.service_id, plan_id))
                if request.maintenance_info_version is not None:
                    raise errors.MaintenanceInfoConflict(
                        f"plan {plan_id!r} declares no maintenance_info, but the request has "
                        f"version {request.maintenance_info_version!r}"
                    )
                provisioning = entry.provisioning if entry else record.provisioning
                asynchronous = provisioning.asynchronous or record.provisioning.asynchronous
                if asynchronous and not request.accepts_incomplete:
                    raise errors.AsyncRequired(_async_required(plan_id))
                changed = service_instance_pb2.ServiceInstance()
                changed.CopyFrom(record)
                changed.plan_id = plan_id
                if request.parameters is not None:
                    changed.parameters.CopyFrom(struct(request.parameters))
                if request.context is not None:
                    changed.context.CopyFrom(struct(request.context))
                changed.provisioning.CopyFrom(provisioning)
                if changed == record:
                    return model.OperationResult(model.Outcome.DONE)  # nothing to change
                return await self._update(stored, changed, request, asynchronous)

    async def _update(
        self,
        stored: Stored,
        record: service_instance_pb2.ServiceInstance,
        request: model.UpdateRequest,
        asynchronous: bool,
    ) -> model.OperationResult:
        op = operations.start(Operation.UPDATE, request.info, asynchronous=asynchronous)
        op.plan_id = record.plan_id
        op.parameters.CopyFrom(record.parameters)
        record.last_operation.CopyFrom(op)
        # Intent first: the record lists both what it owned and what it will own.
        known = {(r.kind, r.namespace, r.name) for r in record.resources}
        record.resources.extend(
            r
            for r in self._ctx.converger.desired_refs(request.instance_id, record)
            if (r.kind, r.namespace, r.name) not in known
        )
        await self._ctx.records.update(stored, record)
        log.info("updating instance %r for %s: %s", request.instance_id, _who(request.info), op.id)
        if asynchronous:
            self._ctx.background(op.id, self._finish_update(request.instance_id, op.id))
            return model.OperationResult(model.Outcome.ACCEPTED, operation=op.id)
        try:
            await self._ctx.converger.converge(request.instance_id)
        except errors.OsbError as error:
            with translated():
                await self._settle(request.instance_id, op.id, error.description)
            raise
        await self._settle(request.instance_id, op.id)
        return model.OperationResult(model.Outcome.DONE)

    async def _finish_update(self, instance_id: str, op_id: str) -> None:
        failed = ""
        try:
            with translated():
                async with self._ctx.lock(instance_id):
                    await self._ctx.converger.converge(instance_id)
        except errors.OsbError as error:
            failed = error.description
        await self._conclude(instance_id, op_id, failed)

    # Deprovision.

    async def deprovision(self, request: model.DeprovisionRequest) -> model.OperationResult:
        with translated():
            async with self._ctx.lock(request.instance_id):
                stored = await self._existing(request.instance_id, refuse=errors.Gone)
                record = stored.spec
                for field, sent, own in (
                    ("service_id", request.service_id, record.service_id),
                    ("plan_id", request.plan_id, record.plan_id),
                ):
                    if sent != own:
                        raise errors.BadRequest(_mismatch(field, sent, own))
                op = record.last_operation
                if op.state == Operation.IN_PROGRESS:
                    if op.type == Operation.DEPROVISION and op.asynchronous:
                        return model.OperationResult(model.Outcome.ACCEPTED, operation=op.id)
                    raise errors.ConcurrencyError(_busy(request.instance_id, op))
                asynchronous = record.provisioning.asynchronous
                if asynchronous and not request.accepts_incomplete:
                    raise errors.AsyncRequired(_async_required(record.plan_id))
                op = operations.start(
                    Operation.DEPROVISION, request.info, asynchronous=asynchronous
                )
                record.last_operation.CopyFrom(op)
                await self._ctx.records.update(stored, record)
                log.info(
                    "deprovisioning instance %r for %s: %s",
                    request.instance_id,
                    _who(request.info),
                    op.id,
                )
            if asynchronous:
                self._ctx.background(op.id, self._finish_deprovision(request.instance_id, op.id))
                return model.OperationResult(model.Outcome.ACCEPTED, operation=op.id)
            try:
                await self._teardown(request.instance_id, op.id)
            except errors.OsbError as error:
                await self._conclude(request.instance_id, op.id, error.description)
                raise
            return model.OperationResult(model.Outcome.DONE)

    async def _teardown(self, instance_id: str, op_id: str) -> None:
        """Deletes the instance's bindings and every resource it owns; keeps a tombstone."""
        with translated():
            async with self._ctx.lock(instance_id):
                for binding in await self._ctx.records.bindings(instance_id):
                    await self._ctx.records.delete(binding)
                await self._ctx.converger.converge(instance_id)  # deletes: it is leaving
                await self._settle(instance_id, op_id)

    async def _finish_deprovision(self, instance_id: str, op_id: str) -> None:
        try:
            await self._teardown(instance_id, op_id)
            log.info("%s for instance %r: succeeded", op_id, instance_id)
        except errors.OsbError as error:
            await self._conclude(instance_id, op_id, error.description)

    # Reads.

    async def fetch(self, instance_id: str) -> model.InstanceView:
        with translated():
            stored = await self._existing(instance_id, refuse=errors.NotFound)
        record = stored.spec
        op = record.last_operation
        if op.state == Operation.IN_PROGRESS and op.type == Operation.PROVISION:
            raise errors.NotFound(f"instance {instance_id!r} is still being provisioned")
        if op.state == Operation.IN_PROGRESS and op.type == Operation.UPDATE:
            raise errors.ConcurrencyError(f"instance {instance_id!r} is being updated")
        return model.InstanceView(
            service_id=record.service_id,
            plan_id=record.plan_id,
            parameters=operations.plain(record.parameters),
            metadata={
                "attributes": {
                    "host": record.target.host,
                    "namespace": record.target.namespace,
                    "resources": [f"{r.kind}/{r.namespace}/{r.name}" for r in record.resources],
                }
            },
        )

    async def last_operation(self, request: model.LastOperationRequest) -> model.LastOperation:
        with translated():
            stored = await self._ctx.records.instance(request.instance_id)
        if stored is None:
            raise errors.NotFound(f"no service instance {request.instance_id!r}")
        op = stored.spec.last_operation
        if request.operation is not None and request.operation != op.id:
            raise errors.BadRequest(
                f"operation {request.operation!r} is not the instance's last operation ({op.id})"
            )
        if stored.spec.deprovisioned and op.state == Operation.SUCCEEDED:
            raise errors.Gone(f"instance {request.instance_id!r} was deprovisioned")
        return operations.report(op)

    async def _existing(self, instance_id: str, *, refuse: type[errors.OsbError]) -> Stored:
        stored = await self._ctx.records.instance(instance_id)
        if stored is None or stored.spec.deprovisioned:
            raise refuse(f"no service instance {instance_id!r}", error="InstanceNotFound")
        return stored


def _plan_of(index: catalog.CatalogIndex, service_id: str, plan_id: str) -> catalog.PlanEntry:
    if service_id not in index.offerings:
        raise errors.BadRequest(
            f"service_id {service_id!r} is not in the catalog", error="UnknownService"
        )
    entry = index.plan(service_id, plan_id)
    if entry is None:
        raise errors.BadRequest(_unknown_plan(index, service_id, plan_id), error="UnknownPlan")
    return entry


def _unknown_plan(index: catalog.CatalogIndex, service_id: str, plan_id: str) -> str:
    offering = index.offerings.get(service_id)
    known = ", ".join(p.id for p in offering.service.plans) if offering else ""
    return f"plan_id {plan_id!r} is not a plan of service {service_id!r} (its plans: {known})"


def _restartable(record: service_instance_pb2.ServiceInstance) -> bool:
    """A tombstone, or a provision that failed: a new provision may take its place."""
    op = record.last_operation
    return record.deprovisioned or (op.type == Operation.PROVISION and op.state == Operation.FAILED)


def _provision_again(
    record: service_instance_pb2.ServiceInstance, request: model.ProvisionRequest
) -> model.ProvisionResult:
    different = [
        field
        for field, own, sent in (
            ("service_id", record.service_id, request.service_id),
            ("plan_id", record.plan_id, request.plan_id),
            ("parameters", record.parameters, struct(request.parameters)),
            ("context", record.context, struct(request.context)),
            ("organization_guid", record.organization_guid, request.organization_guid),
            ("space_guid", record.space_guid, request.space_guid),
        )
        if own != sent
    ]
    if different:
        raise errors.Conflict(
            f"instance {request.instance_id!r} exists with other attributes "
            f"({', '.join(different)} differ)",
            error="InstanceExists",
        )
    op = record.last_operation
    if op.state == Operation.IN_PROGRESS:
        if op.type == Operation.PROVISION and op.asynchronous:
            return model.ProvisionResult(model.Outcome.ACCEPTED, operation=op.id)
        raise errors.ConcurrencyError(_busy(request.instance_id, op))
    return model.ProvisionResult(model.Outcome.EXISTS)


def _same_update(op: service_instance_pb2.Operation, request: model.UpdateRequest) -> bool:
    if request.plan_id is not None and request.plan_id != op.plan_id:
        return False
    return request.parameters is None or struct(request.parameters) == op.parameters


def _busy(instance_id: str, op: service_instance_pb2.Operation) -> str:
    return (
        f"instance {instance_id!r} is busy with {op.id} ({operations.name(op)}); "
        "try again when it is done"
    )


def _mismatch(field: str, sent: str, own: str) -> str:
    return f"{field} {sent!r} is not the instance's ({own!r})"


def _async_required(plan: str) -> str:
    return (
        f"plan {plan!r} works asynchronously: send accepts_incomplete=true and poll last_operation"
    )


def _who(info: model.RequestInfo) -> str:
    origin = info.originating_identity
    if origin is None:
        return info.username
    return f"{info.username} (on behalf of {origin.platform} {origin.value})"
