"""OSB operations as the records keep them (Operation messages), and as last_operation
reports them; plus the JSON <-> Struct conversions records use for parameters and context."""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import json_format, struct_pb2

from api.broker.v1alpha1 import service_instance_pb2
from broker.osb import model
from broker.records import Operation, now


def start(
    kind: service_instance_pb2.Operation.Type,
    info: model.RequestInfo | None,
    *,
    asynchronous: bool,
) -> Operation:
    """A new operation, IN_PROGRESS, with an id to hand to the platform."""
    type_name = Operation.Type.Name(kind).lower()
    return Operation(
        type=kind,
        id=f"{type_name}-{uuid.uuid4().hex[:12]}",
        state=Operation.IN_PROGRESS,
        asynchronous=asynchronous,
        started=now(),
        originating_identity=identity(info),
    )


def finish(op: Operation, *, failed: str = "") -> None:
    op.state = Operation.FAILED if failed else Operation.SUCCEEDED
    op.description = failed or _DONE[op.type]
    op.finished = now()


def running(op: Operation, op_id: str) -> bool:
    """Whether `op` is still the operation `op_id`, in progress."""
    return op.id == op_id and op.state == Operation.IN_PROGRESS


_DONE = {
    Operation.PROVISION: "provisioned",
    Operation.UPDATE: "updated",
    Operation.DEPROVISION: "deprovisioned",
    Operation.BIND: "bound",
    Operation.UNBIND: "unbound",
}


def name(op: Operation) -> str:
    return Operation.Type.Name(op.type).lower()


def identity(info: model.RequestInfo | None) -> service_instance_pb2.OriginatingIdentity | None:
    if info is None or info.originating_identity is None:
        return None
    return service_instance_pb2.OriginatingIdentity(
        platform=info.originating_identity.platform,
        value=struct(info.originating_identity.value),
    )


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def plain(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)


def report(op: Operation) -> model.LastOperation:
    state = {
        Operation.IN_PROGRESS: model.OperationState.IN_PROGRESS,
        Operation.SUCCEEDED: model.OperationState.SUCCEEDED,
        Operation.FAILED: model.OperationState.FAILED,
    }[op.state]
    failed = op.state == Operation.FAILED
    return model.LastOperation(
        state=state,
        description=op.description or f"{name(op)} in progress",
        # A failed update leaves the instance as it was; a failed provision leaves nothing
        # usable; a failed update may be sent again.
        instance_usable=(op.type == Operation.UPDATE) if failed else None,
        update_repeatable=True if failed and op.type == Operation.UPDATE else None,
        retry_after=1 if op.state == Operation.IN_PROGRESS else None,
    )
