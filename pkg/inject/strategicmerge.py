"""Kubernetes' strategic merge patch, for Pods: how an injection template lands on a pod.

Maps merge key by key and a null deletes; a list merges element by element where corev1
declares a merge key (containers, initContainers and volumes by name, ports by
containerPort, env by name, volumeMounts by mountPath, ...) and is replaced otherwise. A
patch element whose key matches merges into the original in place; a new one is appended
and the result is ordered as apimachinery orders it (the patch's new elements ahead of
the original's). `$patch: replace` replaces a map or a
list, `$patch: delete` removes a map or a keyed list element.
"""

from __future__ import annotations

import json
from typing import Any

# The merge key of each keyed list, by its path from the Pod (lists of containers share one).
_CONTAINER = {"ports": "containerPort", "env": "name", "volumeMounts": "mountPath",
              "volumeDevices": "devicePath", "resizePolicy": "resourceName"}  # fmt: skip
_POD_SPEC = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
             "volumes": "name", "imagePullSecrets": "name", "hostAliases": "ip"}  # fmt: skip
_METADATA = {"ownerReferences": "uid", "finalizers": ""}  # "" = a set of scalars


class PatchError(ValueError):
    pass


def merge_pod(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`patch` (a partial Pod) strategically merged onto a copy of `original`."""
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be an object, got {type(patch).__name__}")
    return _merge_map(clone(original), clone(patch), ("pod",))


def clone(value: Any) -> Any:
    """A deep copy of JSON data (a third of copy.deepcopy's time, which injection felt)."""
    return json.loads(json.dumps(value))


def _keys_for(path: tuple[str, ...]) -> dict[str, str]:
    if path == ("pod",):
        return {}
    if path == ("pod", "metadata"):
        return _METADATA
    if path == ("pod", "spec"):
        return _POD_SPEC
    if (
        len(path) == 3
        and path[:2] == ("pod", "spec")
        and path[2] in ("containers", "initContainers", "ephemeralContainers")
    ):
        return _CONTAINER
    return {}


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
) -> dict[str, Any]:
    directive = patch.pop("$patch", None)
    if directive == "replace":
        return {k: v for k, v in patch.items() if v is not None}
    if directive == "delete":
        return {}
    if directive is not None:
        raise PatchError(f"unknown $patch directive {directive!r} at {'.'.join(path)}")
    keyed = _keys_for(path)
    for key, value in patch.items():
        if (
            key.startswith("$setElementOrder/")
            or key.startswith("$retainKeys")
            or key.startswith("$deleteFromPrimitiveList/")
        ):
            continue
        if value is None:
            original.pop(key, None)
            continue
        current = original.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            original[key] = _merge_map(current, value, (*path, key))
        elif isinstance(value, list) and key in keyed:
            original[key] = _merge_list(
                current if isinstance(current, list) else [], value, keyed[key], (*path, key)
            )
        else:
            original[key] = _strip_directives(value)
    return original


def _merge_list(
    original: list[Any], patch: list[Any], merge_key: str, path: tuple[str, ...]
) -> list[Any]:
    if not merge_key:  # a set of scalars: add what is missing
        return original + [v for v in patch if v not in original]
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [
            _strip_directives(e)
            for e in patch
            if not (isinstance(e, dict) and e.get("$patch") == "replace")
        ]
    result = list(original)
    for element in patch:
        if not isinstance(element, dict):
            raise PatchError(f"{'.'.join(path)}: elements must be objects with {merge_key!r}")
        if merge_key not in element:
            raise PatchError(f"{'.'.join(path)}: an element has no merge key {merge_key!r}")
        index = _index(result, merge_key, element[merge_key])
        if element.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip_directives(element))
        else:
            result[index] = _merge_map(result[index], dict(element), path)
    return _order(result, patch, original, merge_key)


def _index(items: list[Any], merge_key: str, value: Any) -> int | None:
    return next(
        (i for i, e in enumerate(items) if isinstance(e, dict) and e.get(merge_key) == value), None
    )


def _order(merged: list[Any], patch: list[Any], original: list[Any], merge_key: str) -> list[Any]:
    """apimachinery's normalizeElementOrder: the patch's elements in the patch's order and the
    original's others in theirs, interleaved where the original orders both."""
    in_patch = {
        e.get(merge_key) for e in patch if isinstance(e, dict) and e.get("$patch") != "delete"
    }
    patch_order = [e.get(merge_key) for e in patch if isinstance(e, dict)]
    patch_items = sorted(
        (e for e in merged if e.get(merge_key) in in_patch),
        key=lambda e: patch_order.index(e.get(merge_key)),
    )
    server_items = [e for e in merged if e.get(merge_key) not in in_patch]
    server_order = [e.get(merge_key) for e in original if isinstance(e, dict)]
    out: list[Any] = []
    i = j = 0
    while i < len(server_items) or j < len(patch_items):
        if i >= len(server_items):
            out.append(patch_items[j])
            j += 1
        elif j >= len(patch_items):
            out.append(server_items[i])
            i += 1
        else:
            left, right = server_items[i].get(merge_key), patch_items[j].get(merge_key)
            if (
                left in server_order
                and right in server_order
                and server_order.index(left) < server_order.index(right)
            ):
                out.append(server_items[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def drop_nulls(value: Any) -> Any:
    """A JSON value as a Go struct round trip leaves it: null fields gone."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value
