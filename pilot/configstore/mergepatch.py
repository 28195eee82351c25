"""JSON merge patch (RFC 7386), the body of `PATCH` with `application/merge-patch+json`."""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """`target` with `patch` merged in: objects merge key by key, null deletes, all else replaces.

    Neither argument is changed; the result shares no mutable parts with `target` that the
    patch touched.
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
