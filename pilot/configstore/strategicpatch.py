"""Strategic merge patch (`application/strategic-merge-patch+json`) for Kubernetes' own kinds.

What `kubectl apply`, `kubectl edit` and the official clients send for built-in kinds. It is a
JSON merge patch that knows lists: where Kubernetes' schema marks a list `merge` with a merge
key (`x-kubernetes-patch-strategy`, `-patch-merge-key`: containers by `name`, a Service's
ports by `port`, a pod's conditions by `type`), patch elements merge into the element with the
same key, or are appended; other lists are replaced whole. The directives kubectl writes are
honoured:

    null                                 delete the field
    {"$patch": "delete", <key>: v}       in a merge list: remove that element
    {"$patch": "replace", ...}           replace this map (or, as a list element, the list)
    "$setElementOrder/<list>": [...]     the order of a merge list's elements after the patch
    "$deleteFromPrimitiveList/<list>"    values to remove from a merged list of scalars
    "$retainKeys": [...]                 the keys this map keeps (others are cleared)

The schema comes from pkg/config/kubeschema.py, so every built-in kind's lists merge as on a
real API server with no code per kind.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pilot.configstore import status
from pkg.config import kubeschema
from pkg.config.kinds import KindSchema

_PATCH = "$patch"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"
_RETAIN = "$retainKeys"


class PatchError(ValueError):
    """A patch that cannot apply: the API server answers 422 with its message."""


def apply(schema: KindSchema, original: Any, patch: Any) -> Any:
    """`original` (an object of `schema`'s kind) with the strategic merge `patch` applied."""
    if not isinstance(patch, dict):
        raise status.bad_request("a strategic merge patch must be a JSON object")
    try:
        return _merge_map(original, patch, kubeschema.model(schema.openapi))
    except PatchError as error:
        raise status.StatusError(
            422, "Invalid", f"the strategic merge patch does not apply: {error}"
        ) from None


def _merge_map(original: Any, patch: Mapping[str, Any], schema: Mapping[str, Any]) -> Any:
    directive = patch.get(_PATCH)
    if directive == "delete":
        return None
    rest = {k: v for k, v in patch.items() if k != _PATCH}
    if directive == "replace":
        return _clean(rest)
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type: {directive!r}")
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    retain = rest.pop(_RETAIN, None)
    orders = {k[len(_ORDER) :]: v for k, v in rest.items() if k.startswith(_ORDER)}
    removals = {
        k[len(_DELETE_PRIMITIVES) :]: v for k, v in rest.items() if k.startswith(_DELETE_PRIMITIVES)
    }
    for key, value in rest.items():
        if key.startswith((_ORDER, _DELETE_PRIMITIVES)):
            continue
        if value is None:
            result.pop(key, None)
            continue
        field = kubeschema.field(schema, key)
        if isinstance(value, dict) and _is_object(field, value):
            merged = _merge_map(result.get(key), value, field)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, field)
        else:
            result[key] = value
    for key, values in removals.items():
        if isinstance(result.get(key), list):
            result[key] = [v for v in result[key] if v not in values]
    for key, order in orders.items():
        if isinstance(result.get(key), list) and isinstance(order, list):
            result[key] = _ordered(result[key], order, kubeschema.field(schema, key))
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _is_object(field: Mapping[str, Any], value: Mapping[str, Any]) -> bool:
    """A map to merge into, rather than a value to replace (a map-typed field always is)."""
    kinds = field.get("type")
    names = [kinds] if isinstance(kinds, str) else list(kinds or [])
    return "object" in names or not names or _PATCH in value


def _merge_list(original: Any, patch: list[Any], field: Mapping[str, Any]) -> list[Any]:
    strategy = str(field.get("x-kubernetes-patch-strategy") or "")
    key = field.get("x-kubernetes-patch-merge-key")
    if any(isinstance(item, dict) and item.get(_PATCH) == "replace" for item in patch):
        return _clean([i for i in patch if not (isinstance(i, dict) and i.get(_PATCH))])
    if "merge" not in strategy.split(","):
        return _clean(patch)
    current = copy.deepcopy(original) if isinstance(original, list) else []
    if not key:
        # A merged list of scalars (finalizers): a union, in order.
        return current + [item for item in patch if item not in current]
    element = kubeschema.items(field)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"an element of a list merged by {key!r} must be an object")
        if key not in item:
            raise PatchError(f"an element of a list merged by {key!r} has no {key!r}")
        found = next(
            (i for i, c in enumerate(current) if isinstance(c, dict) and c.get(key) == item[key]),
            None,
        )
        if item.get(_PATCH) == "delete":
            if found is not None:
                del current[found]
            continue
        if found is None:
            current.append(_clean({k: v for k, v in item.items() if v is not None}))
        else:
            current[found] = _merge_map(current[found], item, element)
    return current


def _ordered(items: list[Any], order: list[Any], field: Mapping[str, Any]) -> list[Any]:
    """The elements named in `order` in that order, then the others as they were."""
    key = field.get("x-kubernetes-patch-merge-key")

    def identity(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [identity(o) for o in order]
    ranked = [i for w in wanted for i in items if identity(i) == w]
    return ranked + [i for i in items if identity(i) not in wanted]


def _clean(value: Any) -> Any:
    """A patch value as data: directives and nulls dropped."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
