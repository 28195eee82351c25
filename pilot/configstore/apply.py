"""Server-side apply (`PATCH` with `application/apply-patch+yaml`), as Kubernetes does it.

The applied configuration is merged into the live object (objects key by key, lists whole, as
Istio's CRDs declare them atomic). The applier then owns exactly the fields it applied: those it
applied last time and left out now are removed, unless another manager still owns them. A field
another manager owns whose value the apply would change is a conflict (409, Kubernetes'
message), unless the applier forces: then the other manager loses it.

    plan = apply.plan(live, config, manager="kubectl", api_version="networking.istio.io/v1")
    ... validate plan.merged (the loader normalizes it) into `new` ...
    managers = apply.reconcile(live, new, plan, force=False)   # raises Conflict
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pilot.configstore import managedfields, status
from pilot.configstore.managedfields import APPLY, Manager, Path
from pkg.config.kinds import KindSchema

_Object = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Plan:
    merged: _Object  # the live object with the configuration merged in and pruned
    applier: Manager  # the applier's entry: the fields of the configuration
    others: list[Manager]  # every other entry, before the apply's changes are reconciled


def check_config(schema: KindSchema, config: Any) -> _Object:
    """The applied configuration, or 400 when it cannot be one."""
    if not isinstance(config, dict):
        raise status.bad_request("an applied configuration must be an object")
    if not config.get("apiVersion") or not config.get("kind"):
        raise status.bad_request(
            f"an applied configuration must set apiVersion and kind (kind {schema.kind})"
        )
    meta = config.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise status.bad_request("metadata.managedFields must be nil")
    return _drop_nulls(config)


def plan(
    live: Mapping[str, Any] | None, config: _Object, *, manager: str, api_version: str
) -> Plan:
    fields = managedfields.leaves(config)
    applier = Manager(manager, APPLY, api_version, managedfields.now(), fields)
    if live is None:
        return Plan(config, applier, [])
    entries = managedfields.from_object(live)
    previous = next((e for e in entries if e.key == applier.key), None)
    others = [e for e in entries if e.key != applier.key]
    meta = {k: v for k, v in live.get("metadata", {}).items() if k != "managedFields"}
    merged = merge({**live, "metadata": meta}, config)
    if previous is not None:
        owned = managedfields.closure(p for e in others for p in e.fields)
        dropped = managedfields.closure(previous.fields) - managedfields.closure(fields) - owned
        merged = remove(merged, dropped)
        if previous.fields == fields:
            applier = previous if previous.api_version == api_version else applier
    return Plan(merged, applier, others)


def reconcile(
    live: Mapping[str, Any], new: Mapping[str, Any], plan: Plan, *, force: bool, schema: KindSchema
) -> list[Manager]:
    """Every entry after the apply turned `live` into `new`; raises the 409 on conflicts."""
    change = managedfields.compare(live, new)
    conflicts = [(e, sorted(e.fields & change.changed)) for e in plan.others]
    conflicts = [(e, paths) for e, paths in conflicts if paths]
    if conflicts and not force:
        raise conflict_error(schema, conflicts)
    kept = [
        dataclasses.replace(e, fields=e.fields - change.changed - change.removed)
        if force
        else dataclasses.replace(e, fields=e.fields - change.removed)
        for e in plan.others
    ]
    return [e for e in kept if e.fields] + [plan.applier]


def conflict_error(
    schema: KindSchema, conflicts: list[tuple[Manager, list[Path]]]
) -> status.StatusError:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {entry.describe()}",
            "field": managedfields.describe_path(path),
        }
        for entry, paths in conflicts
        for path in paths
    ]
    count = len(causes)
    if count == 1:
        entry, [path] = conflicts[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {entry.describe()}: "
            f"{managedfields.describe_path(path)}"
        )
    else:
        lines = []
        for entry, paths in sorted(conflicts, key=lambda c: c[0].manager):
            lines.append(f"conflicts with {entry.describe()}:")
            lines.extend(f"- {managedfields.describe_path(p)}" for p in paths)
        message = f"Apply failed with {count} conflicts: " + "\n".join(lines)
    return status.StatusError(409, "Conflict", message, {"causes": causes})


def merge(live: Mapping[str, Any], config: Mapping[str, Any]) -> _Object:
    """`config` over `live`: objects merge key by key, everything else (lists too) replaces."""
    out = dict(live)
    for key, value in config.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = merge(current, value)
        else:
            out[key] = value
    return out


def remove(obj: Mapping[str, Any], paths: frozenset[Path]) -> _Object:
    """`obj` without the paths (a removed object takes what is under it along)."""
    out = dict(obj)
    for path in sorted(paths, key=len):
        parent: Any = out
        for key in path[:-1]:
            child = parent.get(key) if isinstance(parent, dict) else None
            if not isinstance(child, Mapping):
                parent = None
                break
            parent[key] = child = dict(child)
            parent = child
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return out


def _drop_nulls(value: Any) -> Any:
    # A null in an applied configuration leaves the field unset (and unowned).
    if isinstance(value, Mapping):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value
