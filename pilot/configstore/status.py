"""Kubernetes Status objects: the body of every refused request, and the error that carries one.

Clients (kubectl, the official client, pkg/kube) read `code`, `reason` and `message`, so a
refusal here reads exactly like one from a real API server.
"""

from __future__ import annotations

from typing import Any

from pkg.config.kinds import KindSchema
from pkg.config.loader import LoadError


class StatusError(Exception):
    """A request the store refuses; the server answers `code` with `to_dict()` as the body."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return failure(self.code, self.reason, self.message, self.details)


def failure(code: int, reason: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        status["details"] = details
    status["code"] = code
    return status


def resource_name(schema: KindSchema) -> str:
    """How Kubernetes names a resource type in messages: `virtualservices.networking.istio.io`,
    `deployments.apps`; a core kind by its plural alone (`pods`)."""
    return f"{schema.plural}.{schema.group}" if schema.group else schema.plural


def _details(schema: KindSchema, name: str, kind: str | None = None) -> dict[str, Any]:
    return {"name": name, "group": schema.group, "kind": kind or schema.plural}


def not_found(schema: KindSchema, name: str) -> StatusError:
    return StatusError(
        404, "NotFound", f'{resource_name(schema)} "{name}" not found', _details(schema, name)
    )


def already_exists(schema: KindSchema, name: str) -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{resource_name(schema)} "{name}" already exists',
        _details(schema, name),
    )


def conflict(schema: KindSchema, name: str, why: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource_name(schema)} "{name}": {why}',
        _details(schema, name),
    )


def invalid(schema: KindSchema, name: str, error: LoadError) -> StatusError:
    """422 whose message is the loader's own, so istioctl and the store refuse in one voice."""
    details = _details(schema, name, schema.kind)
    details["causes"] = [
        {"reason": "FieldValueInvalid", "field": problem.path, "message": problem.message}
        for document in error.errors
        for problem in document.problems
    ]
    return StatusError(422, "Invalid", str(error), details)


def invalid_field(
    schema: KindSchema, name: str, field: str, why: str, *, kind: str | None = None
) -> StatusError:
    """422 for one field, worded as Kubernetes words it: `VirtualService.networking.istio.io
    "reviews" is invalid: metadata.name: ...` (`kind` replaces the kind where Kubernetes
    names the resource instead, as for a missing resourceVersion)."""
    kind = kind or schema.kind
    details: dict[str, object] = {"name": name, "group": schema.group, "kind": kind}
    details["causes"] = [{"reason": "FieldValueInvalid", "field": field, "message": why}]
    qualified = f"{kind}.{schema.group}" if schema.group else kind
    return StatusError(422, "Invalid", f'{qualified} "{name}" is invalid: {field}: {why}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def expired(message: str) -> StatusError:
    """410: the watch asked for history the store no longer keeps; the client must relist."""
    return StatusError(410, "Expired", message)
