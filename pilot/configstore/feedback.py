"""What the store says about a write besides the object: warnings, and refusals.

- Warnings the loader gives an accepted object (a field Istio removed, a setting Istio warns
  about) go back as Kubernetes does: one `Warning: 299 - "text"` response header each, which
  kubectl prints as `Warning: text` and the official client hands to its warning handler.
- A refusal (400, 422) is logged as one line, never as a traceback, so a client sending bad
  objects in a loop cannot flood the log. (Bodies that cannot be read, or nest deeper than
  the store could walk, are codec.py's 400s.)
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

log = logging.getLogger(__name__)

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
