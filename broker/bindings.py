"""Service bindings: a SPIFFE identity per binding, its certificate from the mesh's CA, and
the instance's policies admitting it; unbinding takes it out of the policies again.

A binding changes its instance (the identities its policies admit), so both change under
the instance's lock: the binding record first (intent), then the instance record, then the
converger makes the mesh match, then the binding's operation is settled.
"""

from __future__ import annotations

import logging

from api.broker.v1alpha1 import service_binding_pb2, service_instance_pb2
from broker import credentials, names, operations
from broker.operations import finish, running, struct
from broker.osb import errors, model
from broker.records import Operation, Stored
from broker.state import DEFAULT_BINDING_TTL, Context, translated
from pkg.kube import errors as kube_errors

log = logging.getLogger("broker")


class Bindings:
    def __init__(self, context: Context) -> None:
        self._ctx = context

    async def bind(self, request: model.BindRequest) -> model.BindResult:
        with translated():
            async with self._ctx.lock(request.instance_id):
                instance = await self._usable_instance(request)
                stored = await self._ctx.records.binding(request.instance_id, request.binding_id)
                if stored is not None and not _restartable(stored.spec):
                    return self._bind_again(stored.spec, instance.spec, request)
                asynchronous = instance.spec.provisioning.asynchronous
                if asynchronous and not request.accepts_incomplete:
                    raise errors.AsyncRequired(
                        f"instance {request.instance_id!r} binds asynchronously: send "
                        "accepts_incomplete=true and poll last_operation"
                    )
                op = operations.start(Operation.BIND, request.info, asynchronous=asynchronous)
                record = service_binding_pb2.ServiceBinding(
                    binding_id=request.binding_id,
                    instance_id=request.instance_id,
                    service_id=request.service_id,
                    plan_id=request.plan_id,
                    app_guid=request.app_guid or "",
                    route=request.route or "",
                    context=struct(request.context),
                    parameters=struct(request.parameters),
                    spiffe_id=names.spiffe_id(
                        self._ctx.settings.trust_domain,
                        self._ctx.settings.namespace,
                        request.instance_id,
                        request.binding_id,
                    ),
                    last_operation=op,
                )
                if request.info.originating_identity is not None:
                    record.originating_identity.CopyFrom(op.originating_identity)
                await self._write(request, stored, record)
                log.info(
                    "binding %r to instance %r as %s for %s: %s",
                    request.binding_id,
                    request.instance_id,
                    record.spiffe_id,
                    request.info.username,
                    op.id,
                )
                if asynchronous:
                    self._ctx.background(
                        op.id, self._finish_bind(request.instance_id, request.binding_id, op.id)
                    )
                    return model.BindResult(model.Outcome.ACCEPTED, operation=op.id)
                try:
                    done = await self._complete_bind(request.instance_id, request.binding_id, op.id)
                except Exception:
                    await self._undo(request.instance_id, request.binding_id, op.id)
                    raise
                return model.BindResult(model.Outcome.CREATED, self._view(done.spec, instance.spec))

    async def _usable_instance(self, request: model.BindRequest) -> Stored:
        instance = await self._ctx.records.instance(request.instance_id)
        if instance is None or instance.spec.deprovisioned:
            raise errors.Unprocessable(
                f"no service instance {request.instance_id!r} to bind to", error="InstanceNotFound"
            )
        spec = instance.spec
        op = spec.last_operation
        if op.state == Operation.IN_PROGRESS:
            raise errors.ConcurrencyError(
                f"instance {request.instance_id!r} is busy with {op.id}; bind when it is done"
            )
        if op.type == Operation.PROVISION and op.state == Operation.FAILED:
            raise errors.Unprocessable(
                f"instance {request.instance_id!r} failed to provision: {op.description}",
                error="InstanceNotUsable",
            )
        for field, sent, own in (
            ("service_id", request.service_id, spec.service_id),
            ("plan_id", request.plan_id, spec.plan_id),
        ):
            if sent != own:
                raise errors.BadRequest(f"{field} {sent!r} is not the instance's ({own!r})")
        return instance

    def _bind_again(
        self,
        record: service_binding_pb2.ServiceBinding,
        instance: service_instance_pb2.ServiceInstance,
        request: model.BindRequest,
    ) -> model.BindResult:
        different = [
            field
            for field, own, sent in (
                ("app_guid", record.app_guid, request.app_guid or ""),
                ("bind_resource.route", record.route, request.route or ""),
                ("context", record.context, struct(request.context)),
                ("parameters", record.parameters, struct(request.parameters)),
            )
            if own != sent
        ]
        if different:
            raise errors.Conflict(
                f"binding {request.binding_id!r} exists with other attributes "
                f"({', '.join(different)} differ)",
                error="BindingExists",
            )
        op = record.last_operation
        if op.state == Operation.IN_PROGRESS:
            if op.type == Operation.BIND and op.asynchronous:
                return model.BindResult(model.Outcome.ACCEPTED, operation=op.id)
            raise errors.ConcurrencyError(f"binding {request.binding_id!r} is busy with {op.id}")
        return model.BindResult(model.Outcome.EXISTS, self._view(record, instance))

    async def _write(
        self,
        request: model.BindRequest,
        stored: Stored | None,
        record: service_binding_pb2.ServiceBinding,
    ) -> None:
        if stored is not None:  # a tombstone or a failed bind: start again in its place
            await self._ctx.records.update(stored, record)
            return
        try:
            await self._ctx.records.create_binding(request.instance_id, request.binding_id, record)
        except kube_errors.AlreadyExists:
            raise errors.ConcurrencyError(
                f"binding {request.binding_id!r} is being made by another request"
            ) from None

    async def _complete_bind(self, instance_id: str, binding_id: str, op_id: str) -> Stored:
        """Certificate (once), the instance admits the identity, the mesh follows, done.
        The caller holds the lock."""
        stored = await self._ctx.records.binding(instance_id, binding_id)
        if stored is None or not running(stored.spec.last_operation, op_id):
            raise errors.ConcurrencyError(f"binding {binding_id!r} changed meanwhile")
        record = stored.spec
        instance = await self._ctx.records.instance(instance_id)
        if instance is None or instance.spec.deprovisioned:
            raise errors.Unprocessable(f"instance {instance_id!r} is gone")
        if not record.credentials.certificate_chain:
            ttl = DEFAULT_BINDING_TTL
            if instance.spec.provisioning.HasField("binding_ttl"):
                ttl = instance.spec.provisioning.binding_ttl.ToTimedelta()
            credentials = await self._ctx.issuer.issue(record.spiffe_id, ttl)

            def keep(binding: service_binding_pb2.ServiceBinding) -> bool | None:
                if not running(binding.last_operation, op_id):
                    raise errors.ConcurrencyError(f"binding {binding_id!r} changed meanwhile")
                binding.credentials.CopyFrom(credentials)
                return None

            await self._ctx.change_binding(instance_id, binding_id, keep)
        await self._admit(instance_id, record.spiffe_id, admit=True)

        def settle(binding: service_binding_pb2.ServiceBinding) -> bool | None:
            if not running(binding.last_operation, op_id):
                raise errors.ConcurrencyError(f"binding {binding_id!r} changed meanwhile")
            finish(binding.last_operation)
            return None

        done = await self._ctx.change_binding(instance_id, binding_id, settle)
        if done is None:
            raise errors.ConcurrencyError(f"binding {binding_id!r} was deleted meanwhile")
        return done

    async def _admit(self, instance_id: str, spiffe_id: str, *, admit: bool) -> None:
        """Adds the identity to (or takes it from) the instance's, then converges."""

        def change(record: service_instance_pb2.ServiceInstance) -> bool | None:
            op = record.last_operation
            leaving = record.deprovisioned or (
                op.type == Operation.DEPROVISION and op.state == Operation.IN_PROGRESS
            )
            if admit and leaving:
                raise errors.Unprocessable(f"instance {instance_id!r} is being deprovisioned")
            bound = set(record.bound_identities)
            bound = bound | {spiffe_id} if admit else bound - {spiffe_id}
            del record.bound_identities[:]
            record.bound_identities.extend(sorted(bound))
            return None

        if await self._ctx.change_instance(instance_id, change) is None and admit:
            raise errors.Unprocessable(f"instance {instance_id!r} is gone")
        await self._ctx.converger.converge(instance_id)

    async def _undo(self, instance_id: str, binding_id: str, op_id: str) -> None:
        """A synchronous bind failed: the instance no longer admits it, its record goes."""
        try:
            with translated():
                spiffe = names.spiffe_id(
                    self._ctx.settings.trust_domain,
                    self._ctx.settings.namespace,
                    instance_id,
                    binding_id,
                )
                await self._admit(instance_id, spiffe, admit=False)
                current = await self._ctx.records.binding(instance_id, binding_id)
                if current is not None and running(current.spec.last_operation, op_id):
                    await self._ctx.records.delete(current)
        except errors.OsbError:
            log.exception("could not undo the failed bind of %r", binding_id)

    async def _finish_bind(self, instance_id: str, binding_id: str, op_id: str) -> None:
        try:
            with translated():
                async with self._ctx.lock(instance_id):
                    stored = await self._ctx.records.binding(instance_id, binding_id)
                    if stored is None or not running(stored.spec.last_operation, op_id):
                        return
                    await self._complete_bind(instance_id, binding_id, op_id)
            log.info("%s for binding %r: succeeded", op_id, binding_id)
        except errors.OsbError as error:
            await self._fail(instance_id, binding_id, op_id, error.description)

    async def _fail(self, instance_id: str, binding_id: str, op_id: str, why: str) -> None:
        """Records that a background operation failed (logged, not raised)."""
        async with self._ctx.lock(instance_id):
            await self._mark_failed(instance_id, binding_id, op_id, why)

    async def _mark_failed(self, instance_id: str, binding_id: str, op_id: str, why: str) -> None:
        def fail(binding: service_binding_pb2.ServiceBinding) -> bool | None:
            if not running(binding.last_operation, op_id):
                return False
            finish(binding.last_operation, failed=why)
            return None

        try:
            with translated():
                await self._ctx.change_binding(instance_id, binding_id, fail)
        except errors.OsbError as error:
            log.error("could not record the failure of %s: %s", op_id, error)
        log.warning("%s for binding %r failed: %s", op_id, binding_id, why)

    # Unbind.

    async def unbind(self, request: model.UnbindRequest) -> model.OperationResult:
        with translated():
            async with self._ctx.lock(request.instance_id):
                stored = await self._ctx.records.binding(request.instance_id, request.binding_id)
                if stored is None or stored.spec.unbound:
                    raise errors.Gone(
                        f"no binding {request.binding_id!r} of instance {request.instance_id!r}",
                        error="BindingNotFound",
                    )
                record = stored.spec
                for field, sent, own in (
                    ("service_id", request.service_id, record.service_id),
                    ("plan_id", request.plan_id, record.plan_id),
                ):
                    if sent != own:
                        raise errors.BadRequest(f"{field} {sent!r} is not the binding's ({own!r})")
                op = record.last_operation
                if op.state == Operation.IN_PROGRESS:
                    if op.type == Operation.UNBIND and op.asynchronous:
                        return model.OperationResult(model.Outcome.ACCEPTED, operation=op.id)
                    raise errors.ConcurrencyError(
                        f"binding {request.binding_id!r} is busy with {op.id}"
                    )
                instance = await self._ctx.records.instance(request.instance_id)
                asynchronous = bool(instance and instance.spec.provisioning.asynchronous)
                if asynchronous and not request.accepts_incomplete:
                    raise errors.AsyncRequired(
                        f"instance {request.instance_id!r} unbinds asynchronously: send "
                        "accepts_incomplete=true and poll last_operation"
                    )
                op = operations.start(Operation.UNBIND, request.info, asynchronous=asynchronous)
                record.last_operation.CopyFrom(op)
                await self._ctx.records.update(stored, record)
                log.info(
                    "unbinding %r from instance %r for %s: %s",
                    request.binding_id,
                    request.instance_id,
                    request.info.username,
                    op.id,
                )
                if asynchronous:
                    self._ctx.background(
                        op.id, self._finish_unbind(request.instance_id, request.binding_id, op.id)
                    )
                    return model.OperationResult(model.Outcome.ACCEPTED, operation=op.id)
                try:
                    await self._complete_unbind(request.instance_id, request.binding_id, op.id)
                except errors.OsbError as error:
                    # The binding stays (the platform keeps it too); unbinding may be retried.
                    await self._mark_failed(
                        request.instance_id, request.binding_id, op.id, error.description
                    )
                    raise
                return model.OperationResult(model.Outcome.DONE)

    async def _complete_unbind(self, instance_id: str, binding_id: str, op_id: str) -> None:
        stored = await self._ctx.records.binding(instance_id, binding_id)
        if stored is None or not running(stored.spec.last_operation, op_id):
            return
        await self._admit(instance_id, stored.spec.spiffe_id, admit=False)

        def tombstone(binding: service_binding_pb2.ServiceBinding) -> bool | None:
            if not running(binding.last_operation, op_id):
                return False
            # The key goes with the binding; the tombstone only answers pollers.
            for field in ("credentials", "parameters", "context", "originating_identity"):
                binding.ClearField(field)
            binding.unbound = True
            finish(binding.last_operation)
            return None

        await self._ctx.change_binding(instance_id, binding_id, tombstone)

    async def _finish_unbind(self, instance_id: str, binding_id: str, op_id: str) -> None:
        try:
            with translated():
                async with self._ctx.lock(instance_id):
                    await self._complete_unbind(instance_id, binding_id, op_id)
            log.info("%s for binding %r: succeeded", op_id, binding_id)
        except errors.OsbError as error:
            await self._fail(instance_id, binding_id, op_id, error.description)

    # Reads.

    async def fetch(self, instance_id: str, binding_id: str) -> model.BindingView:
        with translated():
            stored = await self._ctx.records.binding(instance_id, binding_id)
            instance = await self._ctx.records.instance(instance_id)
        if stored is None or stored.spec.unbound or instance is None:
            raise errors.NotFound(f"no binding {binding_id!r} of instance {instance_id!r}")
        op = stored.spec.last_operation
        if op.type == Operation.BIND and op.state != Operation.SUCCEEDED:
            what = "is still being made" if op.state == Operation.IN_PROGRESS else "failed"
            raise errors.NotFound(f"binding {binding_id!r} {what}")
        view = self._view(stored.spec, instance.spec)
        return model.BindingView(
            credentials=view.credentials,
            endpoints=view.endpoints,
            expires_at=view.expires_at,
            renew_before=view.renew_before,
            parameters=operations.plain(stored.spec.parameters),
        )

    async def last_operation(self, request: model.LastOperationRequest) -> model.LastOperation:
        assert request.binding_id is not None
        with translated():
            stored = await self._ctx.records.binding(request.instance_id, request.binding_id)
            if stored is None:
                instance = await self._ctx.records.instance(request.instance_id)
                if instance is not None and instance.spec.deprovisioned:
                    raise errors.Gone(f"instance {request.instance_id!r} was deprovisioned")
                raise errors.NotFound(
                    f"no binding {request.binding_id!r} of instance {request.instance_id!r}"
                )
        op = stored.spec.last_operation
        if request.operation is not None and request.operation != op.id:
            raise errors.BadRequest(
                f"operation {request.operation!r} is not the binding's last operation ({op.id})"
            )
        if stored.spec.unbound:
            raise errors.Gone(f"binding {request.binding_id!r} was unbound")
        return operations.report(op)

    def _view(
        self,
        record: service_binding_pb2.ServiceBinding,
        instance: service_instance_pb2.ServiceInstance,
    ) -> model.BindingView:
        return credentials.binding_view(
            record,
            instance.target,
            self._ctx.view.workload_entries(),
            self._ctx.view.service_entries(),
            self._ctx.settings.trust_domain,
        )


def _restartable(record: service_binding_pb2.ServiceBinding) -> bool:
    op = record.last_operation
    return record.unbound or (op.type == Operation.BIND and op.state == Operation.FAILED)
