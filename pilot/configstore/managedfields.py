"""metadata.managedFields: which manager set which field, as a Kubernetes API server records it.

A field set is a set of paths (tuples of JSON object keys). Lists are atomic, as in Istio's CRDs,
so a list is one leaf; objects are granular. A path may name an object node itself (`.` in
FieldsV1), as Kubernetes records an object an update created. The system fields Kubernetes
strips (apiVersion, kind, metadata itself, name, namespace, uid, resourceVersion, generation,
creationTimestamp, managedFields) are never owned.

Updates (create, PUT, merge and JSON patch) give their manager every field they added or changed
and take those fields from everyone else; server-side apply (apply.py) owns exactly the fields
of the applied configuration and conflicts with other managers' fields whose values it would
change.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any

Path = tuple[str, ...]
FieldSet = frozenset[Path]

APPLY = "Apply"
UPDATE = "Update"
_SYSTEM_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
}


@dataclasses.dataclass(frozen=True)
class Manager:
    """One managedFields entry."""

    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str
    fields: FieldSet

    @property
    def key(self) -> tuple[str, str, str]:
        # Kubernetes keys an applier by name alone (it may apply at any version) and an
        # updater by name and version.
        return (self.manager, self.operation, "" if self.operation == APPLY else self.api_version)

    def describe(self) -> str:
        """As a conflict message names the manager."""
        if self.operation == UPDATE:
            return f'"{self.manager}" using {self.api_version}'
        return f'"{self.manager}"'

    def to_dict(self) -> dict[str, Any]:
        return {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(self.fields),
        }


class ManagedFieldsError(ValueError):
    """Entries in a request that cannot be read; the message says which and why."""


# Paths of objects.


def leaves(obj: Mapping[str, Any]) -> FieldSet:
    """The owned-field paths of the values in `obj` (what an applied configuration owns)."""
    return frozenset(p for p, is_node in _walk(obj) if not is_node)


def all_paths(obj: Mapping[str, Any]) -> FieldSet:
    """Leaves and the object nodes above them."""
    return frozenset(p for p, _ in _walk(obj))


def value_at(obj: Mapping[str, Any], path: Path) -> Any:
    current: Any = obj
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return _MISSING
        current = current[key]
    return current


_MISSING = object()


def _walk(obj: Mapping[str, Any]) -> Iterable[tuple[Path, bool]]:
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, Mapping):
            # metadata itself is no one's; its user fields are.
            for meta_key, meta_value in value.items():
                if meta_key not in _SYSTEM_METADATA:
                    yield from _walk_value(("metadata", meta_key), meta_value)
            continue
        yield from _walk_value((key,), value)


def _walk_value(path: Path, value: Any) -> Iterable[tuple[Path, bool]]:
    if isinstance(value, Mapping) and value:
        yield path, True
        for key, child in value.items():
            yield from _walk_value((*path, key), child)
    else:
        yield path, False


@dataclasses.dataclass(frozen=True)
class Comparison:
    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    @property
    def changed(self) -> FieldSet:
        return self.added | self.modified


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> Comparison:
    old_paths, new_paths = all_paths(old), all_paths(new)
    old_leaves, new_leaves = leaves(old), leaves(new)
    both = old_paths & new_paths
    modified = frozenset(
        p
        for p in both
        if (p in old_leaves or p in new_leaves) and value_at(old, p) != value_at(new, p)
    )
    return Comparison(new_paths - old_paths, modified, old_paths - new_paths)


def closure(paths: Iterable[Path]) -> FieldSet:
    """The paths and every object node above them (metadata itself excepted)."""
    out: set[Path] = set()
    for path in paths:
        for end in range(1, len(path) + 1):
            prefix = path[:end]
            if prefix != ("metadata",):
                out.add(prefix)
    return frozenset(out)


def describe_path(path: Path) -> str:
    return "".join(f".{key}" for key in path)


# FieldsV1, the wire form: {"f:spec": {".": {}, "f:hosts": {}}}.


def encode(fields: FieldSet) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(fields):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
        node.setdefault(".", {})
    return _finish(tree)


def _finish(node: dict[str, Any]) -> dict[str, Any]:
    """Leaves are `{}`; a node that is itself a member keeps `.` beside its children."""
    children = {k: _finish(v) for k, v in node.items() if k != "."}
    if not children:
        return {}
    out: dict[str, Any] = {".": {}} if "." in node else {}
    out.update(sorted(children.items()))
    return out


def decode(fields_v1: Any, where: str) -> FieldSet:
    if not isinstance(fields_v1, Mapping):
        raise ManagedFieldsError(f"{where}.fieldsV1: must be an object")
    out: set[Path] = set()
    _decode_into(fields_v1, (), out, where)
    return frozenset(out)


def _decode_into(node: Mapping[str, Any], path: Path, out: set[Path], where: str) -> None:
    if not node and path:
        out.add(path)
    for key, child in node.items():
        if key == ".":
            if path:
                out.add(path)
        elif key.startswith("f:") and isinstance(child, Mapping):
            _decode_into(child, (*path, key[2:]), out, where)
        elif key[:2] in ("k:", "v:", "i:") and path:
            out.add(path)  # an item of a list, which this store keeps atomic: the list
        else:
            raise ManagedFieldsError(f"{where}.fieldsV1: cannot read key {key!r}")


# Entries.


def from_object(obj: Mapping[str, Any]) -> list[Manager]:
    meta = obj.get("metadata") or {}
    entries = meta.get("managedFields") or []
    managers = []
    for index, entry in enumerate(entries):
        where = f"metadata.managedFields[{index}]"
        if not isinstance(entry, Mapping):
            raise ManagedFieldsError(f"{where}: must be an object")
        operation = entry.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ManagedFieldsError(f'{where}.operation: must be "Apply" or "Update"')
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise ManagedFieldsError(f'{where}.fieldsType: must be "FieldsV1"')
        managers.append(
            Manager(
                manager=str(entry.get("manager", "")),
                operation=operation,
                api_version=str(entry.get("apiVersion", "")),
                time=str(entry.get("time", "")),
                fields=decode(entry.get("fieldsV1", {}), where),
            )
        )
    return managers


def to_entries(managers: Iterable[Manager]) -> list[dict[str, Any]]:
    """Kubernetes' order: appliers before updaters, then oldest first, then by name."""
    ordered = sorted(
        (m for m in managers if m.fields),
        key=lambda m: (m.operation, m.time, m.manager, m.api_version),
    )
    return [m.to_dict() for m in ordered]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def base(current: Mapping[str, Any] | None, request: Mapping[str, Any]) -> list[Manager]:
    """The entries a write starts from: the request's when it sets some (a client restoring or
    rewriting them, `[{}]` clearing them), else the stored object's."""
    meta = request.get("metadata") or {}
    sent = meta.get("managedFields") if isinstance(meta, Mapping) else None
    if sent == [{}]:
        return []
    if sent:
        return from_object(request)
    return from_object(current) if current is not None else []


def record_update(
    managers: list[Manager],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    manager: str,
    api_version: str,
) -> list[Manager]:
    """The entries after an update by `manager` turned `old` into `new`."""
    change = compare(old, new)
    lost = change.changed | change.removed
    key = (manager, UPDATE, api_version)
    out: list[Manager] = []
    mine: Manager | None = None
    for entry in managers:
        if entry.key == key:
            mine = entry
            continue
        out.append(_without(entry, lost))
    fields = ((mine.fields if mine else frozenset()) | change.changed) - change.removed
    if mine is None or fields != mine.fields:
        mine = Manager(manager, UPDATE, api_version, now(), frozenset(fields))
    out.append(mine)
    return [m for m in out if m.fields]


def _without(entry: Manager, paths: FieldSet) -> Manager:
    kept = entry.fields - paths
    return entry if kept == entry.fields else dataclasses.replace(entry, fields=kept)


def stamp(obj: dict[str, Any], managers: list[Manager]) -> dict[str, Any]:
    """`obj` carrying the entries (none: no managedFields key, as Kubernetes omits it)."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    entries = to_entries(managers)
    if entries:
        meta["managedFields"] = entries
    return {**obj, "metadata": meta}


def canonical(entries: Any) -> str:
    return json.dumps(entries, sort_keys=True)
