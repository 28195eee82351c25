"""Fields Istio's API once had and removed: accepted with a warning, never silently.

Files written for Istio 1.0-1.4 still carry them. Kubernetes drops a field its schema no longer
has and warns (`Warning: unknown field "spec.http[0].websocketUpgrade"`); so do we (the
warning is `spec.http[0].websocketUpgrade: removed from Istio's API (...); ignored`), and where
the field has a direct successor its value moves there (unless the successor is set too), so
the route keeps doing what its author meant: `abort.percent: 10` must not become an abort of
every request.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pkg.config.validation.result import FieldPath, ValidationResult


@dataclasses.dataclass(frozen=True)
class Removed:
    note: str = ""  # why it went, for a field that is dropped
    moves_to: tuple[str, ...] = ()  # the successor's path inside the same message
    wraps: str = ""  # the successor is a message holding the value in this field


_ROUTE_HEADERS = {
    "appendHeaders": Removed(moves_to=("headers", "request", "add")),
    "appendRequestHeaders": Removed(moves_to=("headers", "request", "add")),
    "appendResponseHeaders": Removed(moves_to=("headers", "response", "add")),
    "removeRequestHeaders": Removed(moves_to=("headers", "request", "remove")),
    "removeResponseHeaders": Removed(moves_to=("headers", "response", "remove")),
}
_NEVER_IMPLEMENTED = "it was never implemented"

REMOVED: dict[str, dict[str, Removed]] = {
    "istio.networking.v1alpha3.HTTPRoute": {
        "websocketUpgrade": Removed("websocket upgrades are done automatically since Istio 1.0"),
        **_ROUTE_HEADERS,
    },
    "istio.networking.v1alpha3.HTTPRouteDestination": {
        k: v for k, v in _ROUTE_HEADERS.items() if k != "appendHeaders"
    },
    "istio.networking.v1alpha3.HTTPFaultInjection.Abort": {
        "percent": Removed(moves_to=("percentage",), wraps="value"),
    },
    "istio.networking.v1alpha3.TLSMatchAttributes": {
        "sourceSubnet": Removed(_NEVER_IMPLEMENTED),
    },
    "istio.networking.v1alpha3.Sidecar": {"localhost": Removed(_NEVER_IMPLEMENTED)},
    "istio.networking.v1alpha3.IstioIngressListener": {
        "localhostClientTls": Removed(_NEVER_IMPLEMENTED),
    },
    "istio.networking.v1alpha3.IstioEgressListener": {
        "localhostServerTls": Removed(_NEVER_IMPLEMENTED),
    },
}


def replace_removed(
    value: dict[str, Any], message: str, path: FieldPath, out: ValidationResult
) -> dict[str, Any]:
    """`value` without the removed fields of `message`, their values moved where they live now."""
    removed = REMOVED.get(message)
    if not removed or not removed.keys() & value.keys():
        return value
    value = dict(value)
    for key in [k for k in value if k in removed]:
        entry, old = removed[key], value.pop(key)
        where = path / key
        if not entry.moves_to:
            out.warn(where, f"removed from Istio's API ({entry.note}); ignored")
            continue
        new_path = FieldPath(".".join([path, *entry.moves_to]))
        moved = {entry.wraps: old} if entry.wraps else old
        if _put(value, entry.moves_to, moved):
            out.warn(where, f"removed from Istio's API; read as {new_path}")
        else:
            out.warn(where, f"removed from Istio's API; ignored, as {new_path} is set too")
    return value


def _put(value: dict[str, Any], path: tuple[str, ...], moved: Any) -> bool:
    """Sets value[path...] = moved, copying the dicts on the way; False if already set."""
    holder = value
    for part in path[:-1]:
        inner = holder.get(part)
        if inner is None:
            inner = {}
        elif not isinstance(inner, dict):
            return False  # the structure check reports the wrong type there
        holder[part] = inner = dict(inner)
        holder = inner
    if holder.get(path[-1]) not in (None, {}, []):
        return False
    holder[path[-1]] = moved
    return True
