"""A Kubernetes-style resource whose spec is a typed proto message."""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import TYPE_CHECKING, Any

from pkg.config import yamlstream
from pkg.config.kinds import KindSchema

if TYPE_CHECKING:  # imported where used: reading objects as the server sent them needs no proto
    from google.protobuf import descriptor, message


@dataclasses.dataclass(frozen=True)
class Metadata:
    name: str
    namespace: str = "default"  # "" for a cluster-scoped kind (Namespace)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: str = ""
    uid: str = ""
    generate_name: str = ""  # the prefix the server made `name` from, when it did
    # Kubernetes kinds: the other ObjectMeta fields they carry (ownerReferences, finalizers,
    # deletionTimestamp, ...), as written.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.generate_name:
            out["generateName"] = self.generate_name
        if self.namespace:
            out["namespace"] = self.namespace
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        if self.generation:
            out["generation"] = self.generation
        if self.creation_timestamp:
            out["creationTimestamp"] = self.creation_timestamp
        if self.uid:
            out["uid"] = self.uid
        out.update(self.extra)
        return out


@dataclasses.dataclass(frozen=True)
class Resource:
    """An object of a kind. Istio's kinds: `spec` is the typed proto. Kubernetes' own kinds
    (`schema.is_kubernetes`) have no proto: `body` holds every field of the object besides
    apiVersion, kind and metadata (spec, status, data, subsets, ...) as written and validated
    against Kubernetes' schema, and `spec` is `body["spec"]` as a Struct (for code that only
    wants to look; numbers in a Struct are doubles, so exact values are read from `body`)."""

    schema: KindSchema
    metadata: Metadata
    spec: message.Message
    body: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        head = {
            "apiVersion": self.schema.api_version,
            "kind": self.schema.kind,
            "metadata": self.metadata.to_dict(),
        }
        if self.body is not None:
            return {**head, **copy.deepcopy(self.body)}
        return {**head, "spec": spec_to_dict(self.spec)}

    def to_yaml(self) -> str:
        return yamlstream.dump(self.to_dict())


def spec_to_dict(spec: message.Message) -> dict[str, Any]:
    """A spec as users write it: lowerCamelCase names, short durations ('0.5s', not '0.500s')."""
    from google.protobuf import json_format

    data = json_format.MessageToDict(spec, preserving_proto_field_name=False)
    return _shorten_durations(data, spec.DESCRIPTOR)


def _shorten_durations(data: Any, desc: descriptor.Descriptor) -> Any:
    if desc.full_name == "google.protobuf.Duration" and isinstance(data, str):
        return _short_duration(data)
    if not isinstance(data, dict):
        return data
    for field in desc.fields:
        if field.json_name not in data or field.message_type is None:
            continue
        value = data[field.json_name]
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                data[field.json_name] = {
                    k: _shorten_durations(v, value_field.message_type) for k, v in value.items()
                }
        elif field.is_repeated:
            data[field.json_name] = [_shorten_durations(v, field.message_type) for v in value]
        else:
            data[field.json_name] = _shorten_durations(value, field.message_type)
    return data


def _short_duration(text: str) -> str:
    match = re.fullmatch(r"(-?\d+)\.(\d+)s", text)
    if not match:
        return text
    fraction = match.group(2).rstrip("0")
    return f"{match.group(1)}.{fraction}s" if fraction else f"{match.group(1)}s"


def dump_yaml(resources: list[Resource]) -> str:
    """Many resources as one multi-document YAML stream."""
    return yamlstream.dump_all([r.to_dict() for r in resources])
