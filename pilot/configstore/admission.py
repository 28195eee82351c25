"""What the store says about a write besides the object: warnings, and refusals.

- Warnings the loader gives an accepted object (a field Istio removed, a setting Istio warns
  about) go back as Kubernetes does: one `Warning: 299 - "text"` response header each, which
  kubectl prints as `Warning: text` and the official client hands to its warning handler.
- A request body that is not JSON, or nests deeper than anything the store could walk, is a
  400 before anything looks at it; a refusal (400, 422) is logged as one line, never as a
  traceback, so a client sending bad objects in a loop cannot flood the log.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from pilot.configstore import status

log = logging.getLogger(__name__)

MAX_BODY_DEPTH = 100  # Istio's and Kubernetes' objects nest about 20 levels at most
MAX_WARNING_LENGTH = 4096  # what Kubernetes keeps of one warning
MAX_WARNINGS = 50
_REFUSALS = frozenset({400, 422})
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_warnings: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "configstore_warnings", default=None
)


def warn(messages: Iterable[str]) -> None:
    """Adds warnings to the response of the request being served (no-op outside one)."""
    collected = _warnings.get()
    if collected is not None:
        collected.extend(messages)


def warning_header(message: str) -> str:
    """RFC 7234 form, as Kubernetes writes it: `299 - "text"`, quotes and backslashes escaped."""
    text = "".join(c if c.isprintable() else " " for c in message)[:MAX_WARNING_LENGTH]
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def decode_body(raw: bytes) -> Any:
    """The request body as JSON; a 400 if it is not JSON or nests deeper than MAX_BODY_DEPTH."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise status.bad_request(
            f"the request body nests deeper than {MAX_BODY_DEPTH} levels"
        ) from None
    except ValueError as error:  # also UnicodeDecodeError, and integers of over 4300 digits
        raise status.bad_request(f"the request body is not valid JSON: {error}") from None
    if _depth_exceeds(body, MAX_BODY_DEPTH):
        raise status.bad_request(f"the request body nests deeper than {MAX_BODY_DEPTH} levels")
    return body


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


@web.middleware
async def feedback(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Outermost middleware: Warning headers on the response, one log line per refusal."""
    collected: list[str] = []
    token = _warnings.set(collected)
    try:
        response = await handler(request)
    finally:
        _warnings.reset(token)
    if collected and not response.prepared:  # a watch has sent its headers already
        for message in collected[:MAX_WARNINGS]:
            response.headers.add("Warning", warning_header(message))
    if response.status in _REFUSALS:
        log.info(
            "%s %s refused (%d): %s",
            request.method,
            request.path,
            response.status,
            _reason(response),
        )
    return response


def _reason(response: web.StreamResponse) -> str:
    """The first line of a Status body's message, shortened: what the log line says."""
    body = getattr(response, "text", None)
    try:
        message = str(json.loads(body).get("message", "")) if body else ""
    except (ValueError, AttributeError):
        message = ""
    line = message.splitlines()[0] if message else ""
    more = len(message.splitlines()) - 1
    line = line if len(line) <= 300 else line[:297] + "..."
    return line + (f" (and {more} more)" if more > 0 else "")
