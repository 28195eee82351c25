"""The broker's refusals, each with the status code and error body the OSB spec gives it.

Bodies are the spec's Error object: `error` (one camel-case word naming the condition; the
spec fixes AsyncRequired, ConcurrencyError, RequiresApp and MaintenanceInfoConflict),
`description` (what, where and why, for a person), and for failed operations
`instance_usable` / `update_repeatable`. (RequiresApp never arises: bindings need no app.)
"""

from __future__ import annotations

from typing import Any


class OsbError(Exception):
    status = 500
    error = "InternalError"

    def __init__(
        self,
        description: str,
        *,
        error: str | None = None,
        instance_usable: bool | None = None,
        update_repeatable: bool | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        if error is not None:
            self.error = error
        self.instance_usable = instance_usable
        self.update_repeatable = update_repeatable

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "description": self.description}
        if self.instance_usable is not None:
            body["instance_usable"] = self.instance_usable
        if self.update_repeatable is not None:
            body["update_repeatable"] = self.update_repeatable
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.error!r}, {self.description!r})"


class BadRequest(OsbError):
    """400: malformed, or missing or inconsistent mandatory data."""

    status = 400
    error = "BadRequest"


class Unauthorized(OsbError):
    status = 401
    error = "Unauthorized"


class NotFound(OsbError):
    status = 404
    error = "NotFound"


class MethodNotAllowed(OsbError):
    status = 405
    error = "MethodNotAllowed"

    def __init__(self, description: str, allowed: tuple[str, ...]) -> None:
        super().__init__(description)
        self.allowed = allowed


class Conflict(OsbError):
    """409: the id is taken by an instance or binding with other attributes."""

    status = 409
    error = "Conflict"


class Gone(OsbError):
    """410: deleting (or polling the deletion of) something that does not exist."""

    status = 410
    error = "Gone"


class PreconditionFailed(OsbError):
    """412: the platform's X-Broker-API-Version is missing or one this broker does not speak."""

    status = 412
    error = "PreconditionFailed"


class PayloadTooLarge(OsbError):
    status = 413
    error = "PayloadTooLarge"


class Unprocessable(OsbError):
    """422: well formed, but not possible now or here."""

    status = 422
    error = "UnprocessableEntity"


class AsyncRequired(Unprocessable):
    error = "AsyncRequired"


class ConcurrencyError(Unprocessable):
    error = "ConcurrencyError"


class MaintenanceInfoConflict(Unprocessable):
    error = "MaintenanceInfoConflict"


class ServiceUnavailable(OsbError):
    """503: a part of the mesh the broker needs (config store, CA) does not answer."""

    status = 503
    error = "ServiceUnavailable"
