"""The client's errors, one class per Kubernetes Status reason a caller acts on.

Built from the Status JSON a server returns (pilot's config store or a real API server), and
printed as kubectl prints them: `Error from server (NotFound): virtualservices... "x" not found`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def __str__(self) -> str:
        return f"Error from server ({self.reason}): {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.reason!r}, {self.message!r})"


class BadRequest(ApiError):
    """400: the request disagrees with itself (e.g. the body's name is not the path's)."""


class NotFound(ApiError):
    """404."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: create of a name that is taken."""


class Conflict(ApiError):
    """409 Conflict: the resourceVersion precondition of an update failed."""


class Gone(ApiError):
    """410: the watch asked for history the server no longer keeps; list again."""


class Invalid(ApiError):
    """422: the object was refused by validation; `message` names the fields and why."""


class Unavailable(ApiError):
    """The server could not be reached (refused, timed out, cut off) or answered 5xx."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        reached: bool = True,
    ) -> None:
        super().__init__(code, reason, message, details)
        self.reached = reached

    @classmethod
    def unreachable(cls, url: str, why: str) -> Unavailable:
        return cls(
            503,
            "ServiceUnavailable",
            f"cannot reach the config store at {url}: {why}",
            reached=False,
        )

    def __str__(self) -> str:
        # Nothing came "from the server" when it could not be reached.
        return super().__str__() if self.reached else self.message


def from_status(status: Mapping[str, Any], code: int | None = None) -> ApiError:
    """The error a Status object (an HTTP error body or a watch ERROR event) stands for."""
    code = int(status.get("code") or code or 500)
    reason = str(status.get("reason") or _phrase(code))
    message = str(status.get("message") or reason)
    details = status.get("details") if isinstance(status.get("details"), Mapping) else None
    cls: type[ApiError]
    if code == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif code >= 500:
        cls = Unavailable
    else:
        cls = _BY_CODE.get(code, ApiError)
    return cls(code, reason, message, details)


def from_response(code: int, body: bytes) -> ApiError:
    """The error of a non-2xx response, whether or not its body is a Status."""
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        text = body.decode("utf-8", "replace").strip()[:200]
        status = {"code": code, "reason": _phrase(code), "message": text or _phrase(code)}
    return from_status(status, code)


def transport_reason(error: BaseException, timeout: float) -> str:
    """Why a blocking socket or http.client call failed, in words a person can act on."""
    import http.client
    import socket

    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, http.client.RemoteDisconnected | http.client.IncompleteRead):
        return "the connection was closed before the answer was complete"
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[:1].lower() + error.strerror[1:]
    return str(error) or type(error).__name__


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase.replace(" ", "")
    except ValueError:
        return "Unknown"


_BY_CODE: dict[int, type[ApiError]] = {400: BadRequest, 404: NotFound, 410: Gone, 422: Invalid}
