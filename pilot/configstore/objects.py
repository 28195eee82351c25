"""The object a write stores: the validated resource plus what the server owns of its metadata.

Pure functions of the admitted request, the stored object and the write's options: the store
calls them under its lock and commits what they return.
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
import uuid
from typing import Any

from pilot.configstore import managedfields, status
from pilot.configstore.admission import Admitted
from pilot.configstore.options import DeleteOptions, WriteOptions
from pkg.config.kinds import KindSchema
from pkg.config.resource import Resource

_Object = dict[str, Any]
# generateName: Kubernetes' suffix of 5 characters from an alphabet without vowels (no words)
# or look-alike digits, on a prefix cut so the name stays within 63 characters.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX_LENGTH = 5
_MAX_NAME = 63
_NAME_ATTEMPTS = 8


def created(
    admitted: Admitted,
    options: WriteOptions,
    version: int,
    managers: list[managedfields.Manager] | None = None,
) -> _Object:
    """A new object at `version`: generation 1, a fresh uid, the creation time.

    `managers` (server-side apply) replace the update bookkeeping of the creator's fields.
    """
    resource = admitted.resource
    stored = dataclasses.replace(
        resource.metadata,
        # A dry run spends no version: its answer has none, as on a real server.
        resource_version="" if options.dry_run else str(version),
        generation=1,
        creation_timestamp=now(),
        uid=str(uuid.uuid4()),
    )
    obj = {**_head(dataclasses.replace(resource, metadata=stored)), **admitted.content()}
    if managers is None:
        managers = managedfields.record_update(
            admitted.managers or [],
            {},
            obj,
            manager=options.field_manager,
            api_version=options.api_version or resource.schema.api_version,
        )
    return managedfields.stamp(obj, managers)


def replaced(
    admitted: Admitted,
    current: _Object,
    options: WriteOptions,
    version: int,
    managers: list[managedfields.Manager] | None = None,
) -> _Object | None:
    """`current` replaced by the request at `version`, or None when nothing would change (no
    write, no event, no version spent, as on Kubernetes).

    uid and creation time stay; generation counts spec changes only.
    """
    resource = admitted.resource
    current_meta = current["metadata"]
    content = admitted.content()
    spec_changed = content.get("spec", {}) != current.get("spec", {})
    stored = dataclasses.replace(
        resource.metadata,
        # A dry run answers with the version the object has: none is spent.
        resource_version=current_meta["resourceVersion"] if options.dry_run else str(version),
        generation=current_meta.get("generation", 1) + (1 if spec_changed else 0),
        creation_timestamp=current_meta.get("creationTimestamp", ""),
        uid=current_meta.get("uid", ""),
    )
    obj = {**_head(dataclasses.replace(resource, metadata=stored)), **content}
    if managers is None:
        base = admitted.managers
        if base is None:
            base = managedfields.from_object(current)
        managers = managedfields.record_update(
            base,
            current,
            obj,
            manager=options.field_manager,
            api_version=options.api_version or resource.schema.api_version,
        )
    obj = managedfields.stamp(obj, managers)
    return None if _unversioned(obj) == _unversioned(current) else obj


def _head(resource: Resource) -> _Object:
    """apiVersion, kind and metadata of a resource (the rest comes from the admitted content)."""
    obj = resource.to_dict()
    return {k: obj[k] for k in ("apiVersion", "kind", "metadata")}


def generated_name(generate_name: str, taken: set[str]) -> str:
    """A name made from metadata.generateName that `taken` does not hold (as far as a few
    tries go; the create then says AlreadyExists, as Kubernetes' would)."""
    prefix = generate_name[: _MAX_NAME - _SUFFIX_LENGTH]
    name = ""
    for _ in range(_NAME_ATTEMPTS):
        name = prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(_SUFFIX_LENGTH))
        if name not in taken:
            break
    return name


def check_preconditions(schema: KindSchema, current: _Object, options: DeleteOptions) -> None:
    """A delete's preconditions, refused (409) as Kubernetes words it."""
    meta = current["metadata"]
    if options.uid and options.uid != meta.get("uid"):
        raise status.conflict(
            schema,
            meta["name"],
            f"Precondition failed: UID in precondition: {options.uid}, UID in object meta: "
            f"{meta.get('uid', '')}",
        )
    if options.resource_version and options.resource_version != meta["resourceVersion"]:
        raise status.conflict(
            schema,
            meta["name"],
            f"Precondition failed: ResourceVersion in precondition: "
            f"{options.resource_version}, ResourceVersion in object meta: "
            f"{meta['resourceVersion']}",
        )


def grace_period(schema: KindSchema, current: _Object, options: DeleteOptions) -> int | None:
    """Seconds a pod gets to stop before it is removed, or None to remove it now (any other
    kind, a pod on no node, gracePeriodSeconds=0), as Kubernetes' pod deletion decides."""
    if not schema.is_kubernetes or schema.kind != "Pod":
        return None
    spec, phase = current.get("spec") or {}, (current.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return None
    grace = options.grace_period_seconds
    if grace is None:
        grace = int(spec.get("terminationGracePeriodSeconds", 30))
    return grace if grace > 0 else None


def terminating(current: _Object, grace: int, version: int) -> _Object | None:
    """The pod marked for deletion in `grace` seconds; None when it already is, no later."""
    meta = current["metadata"]
    deadline = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace)
    if meta.get("deletionTimestamp") and meta.get("deletionGracePeriodSeconds", grace) <= grace:
        return None
    stamped = {
        **meta,
        "deletionTimestamp": deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deletionGracePeriodSeconds": grace,
        "resourceVersion": str(version),
    }
    return {**current, "metadata": stamped}


def _unversioned(obj: _Object) -> _Object:
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
