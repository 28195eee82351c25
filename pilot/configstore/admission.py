"""A request's object, checked against its path and validated by the shared loader.

Disagreements with the path are the client's bug (400); problems in the object itself are the
loader's (422, its message verbatim), so istioctl and the store refuse in one voice.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pilot.configstore import managedfields, status
from pkg.config import loader
from pkg.config.kinds import KindSchema, KindSet
from pkg.config.resource import Resource


@dataclasses.dataclass(frozen=True)
class Admitted:
    resource: Resource
    # The managedFields the request carried: None when it sent none (the stored ones go on),
    # [] when it cleared them (`[{}]`).
    managers: list[managedfields.Manager] | None


def admit(
    kinds: KindSet, schema: KindSchema, namespace: str, name: str | None, body: Any
) -> Admitted:
    if not isinstance(body, dict):
        raise status.bad_request("the request body must be a JSON object")
    body = dict(body)
    api_version = body.setdefault("apiVersion", schema.api_version)
    kind = body.setdefault("kind", schema.kind)
    if kinds.by_kind(str(api_version), str(kind)) is schema:
        body["apiVersion"] = api_version = schema.api_version  # any served version is one
    if api_version != schema.api_version:
        raise status.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({schema.api_version})"
        )
    if kind != schema.kind:
        raise status.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({schema.kind})"
        )
    meta = body.get("metadata")
    if meta is None and name is not None:
        meta = {}
    shown = name or ""
    managers = None
    if isinstance(meta, dict):
        meta = dict(meta)
        if meta.get("namespace", namespace) != namespace:
            raise status.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        if name is not None and meta.setdefault("name", name) != name:
            raise status.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the "
                f"URL ({name})"
            )
        shown = str(meta.get("name") or "")
        body["metadata"] = meta
        try:
            sent = managedfields.base(None, body) if meta.get("managedFields") else None
        except managedfields.ManagedFieldsError as error:
            raise status.invalid_field(
                schema, shown, "metadata.managedFields", str(error)
            ) from None
        managers = sent
    try:
        resource = loader.load_object(body, kinds=kinds, namespace=namespace, source="<request>")
    except loader.LoadError as error:
        raise status.invalid(schema, shown, error) from None
    return Admitted(resource, managers)
