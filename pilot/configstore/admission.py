"""A request's object, checked against its path and validated by the shared loader.

Disagreements with the path are the client's bug (400); problems in the object itself are the
loader's (422, its message verbatim), so istioctl and the store refuse in one voice.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pilot.configstore import feedback, managedfields, status
from pkg.config import loader
from pkg.config.kinds import KindSchema, KindSet
from pkg.config.resource import Resource, spec_to_dict


@dataclasses.dataclass(frozen=True)
class Admitted:
    resource: Resource
    # The managedFields the request carried: None when it sent none (the stored ones go on),
    # [] when it cleared them (`[{}]`).
    managers: list[managedfields.Manager] | None
    written: Any = None  # the spec as the request wrote it

    def content(self) -> dict[str, Any]:
        """Every field of the object to store besides apiVersion, kind and metadata: the spec
        of an Istio kind; a Kubernetes kind's fields as validated (spec, status, data, ...)."""
        if self.resource.body is not None:
            return copy.deepcopy(self.resource.body)
        return {"spec": self.spec()}

    def spec(self) -> dict[str, Any]:
        """The spec to store: the canonical proto3 JSON, with the default values the request
        wrote kept (proto3 drops `location: MESH_EXTERNAL`, the first enum value; Kubernetes
        keeps what was written, and kubectl apply would otherwise find a change every time)."""
        canonical = spec_to_dict(self.resource.spec)
        return with_written_defaults(canonical, self.written, self.resource.spec.DESCRIPTOR)


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
    found: list[loader.DocumentError] = []
    try:
        resource = loader.load_object(
            body, kinds=kinds, namespace=namespace, source="<request>", warnings=found
        )
    except loader.LoadError as error:
        raise status.invalid(schema, shown, error) from None
    feedback.warn(
        f"{p.path}: {p.message}" if p.path else p.message
        for document in found
        for p in document.problems
    )
    return Admitted(resource, managers, body.get("spec"))


def with_written_defaults(canonical: Any, written: Any, desc: Descriptor) -> Any:
    if not isinstance(canonical, dict) or not isinstance(written, dict):
        return canonical
    out = dict(canonical)
    fields = {f.json_name: f for f in desc.fields}
    fields.update({f.name: f for f in desc.fields})
    for key, value in written.items():
        field = fields.get(key)
        if field is None or value is None:
            continue
        name = field.json_name
        if name not in out:
            out[name] = _as_written(field, value)
            continue
        message = field.message_type
        if message is None or message.full_name.startswith("google.protobuf."):
            continue
        if message.GetOptions().map_entry:
            value_type = message.fields_by_name["value"].message_type
            if value_type is not None and isinstance(value, dict):
                out[name] = {
                    k: with_written_defaults(v, value.get(k), value_type)
                    for k, v in out[name].items()
                }
        elif field.is_repeated:
            if isinstance(value, list) and len(value) == len(out[name]):
                out[name] = [
                    with_written_defaults(c, w, message)
                    for c, w in zip(out[name], value, strict=True)
                ]
        else:
            out[name] = with_written_defaults(out[name], value, message)
    return out


def _as_written(field: FieldDescriptor, value: Any) -> Any:
    """A value proto3 JSON left out (a default, an empty list), in its canonical spelling."""
    if field.enum_type is not None and not field.is_repeated and isinstance(value, int):
        found = field.enum_type.values_by_number.get(value)
        return found.name if found is not None else value
    return value
