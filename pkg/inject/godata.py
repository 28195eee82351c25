"""What an injection template sees: the pod as Go's corev1 structs, MeshConfig and
ProxyConfig as Go's generated protobuf structs, and SidecarTemplateData around them.

Templates written for Istio name Go fields (`.ObjectMeta.Annotations`, `.Spec.Containers`,
`$c.Ports`, `.ProxyConfig.HoldApplicationUntilProxyStarts.GetValue`,
`.MeshConfig.ProxyListenPort`), so the views answer those names with Go's zero values for
what is unset: "" for a missing string, an empty map[string]string for missing labels, a
nil pointer (false, whose Get methods give zeros) for an unset message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor, message

from pkg.gotemplate import Enum, FieldError, StrMap, Struct
from pkg.gotemplate.funcs import go_json, ordered

# Zero values of the corev1 fields templates read, by struct; anything else missing is nil.
# A struct-typed field names the struct its value is viewed as.
_STRING, _BOOL, _INT, _STRMAP = "", False, 0, "strmap"
_STRUCTS: dict[str, dict[str, Any]] = {
    "Pod": {"TypeMeta": "TypeMeta", "ObjectMeta": "ObjectMeta", "Spec": "PodSpec"},
    "TypeMeta": {"APIVersion": _STRING, "Kind": _STRING},
    "ObjectMeta": {"Name": _STRING, "GenerateName": _STRING, "Namespace": _STRING, "UID": _STRING,
                   "Labels": _STRMAP, "Annotations": _STRMAP},
    "PodSpec": {"Containers": ["Container"], "InitContainers": ["Container"], "Volumes": ["Volume"],
                "ServiceAccountName": _STRING, "NodeName": _STRING, "HostNetwork": _BOOL,
                "DNSPolicy": _STRING, "RestartPolicy": _STRING, "NodeSelector": _STRMAP,
                "ImagePullSecrets": ["LocalObjectReference"], "SecurityContext": "PodSecurityContext"},
    "Container": {"Name": _STRING, "Image": _STRING, "Ports": ["ContainerPort"], "Args": [_STRING],
                  "Command": [_STRING], "ImagePullPolicy": _STRING, "WorkingDir": _STRING,
                  "SecurityContext": "SecurityContext"},
    "ContainerPort": {"Name": _STRING, "HostPort": _INT, "ContainerPort": _INT, "Protocol": _STRING,
                      "HostIP": _STRING},
    "Volume": {"Name": _STRING},
    "LocalObjectReference": {"Name": _STRING},
    "SecurityContext": {},
    "PodSecurityContext": {},
}  # fmt: skip
# encoding/json field order (and omitempty) of the structs structToJSON prints.
_JSON_ORDER = {
    "ContainerPort": (("name", True), ("hostPort", True), ("containerPort", False),
                      ("protocol", True), ("hostIP", True)),
}  # fmt: skip
_JSON_NAMES = {"ObjectMeta": "metadata", "UID": "uid", "HostIP": "hostIP", "PodIP": "podIP",
               "DNSPolicy": "dnsPolicy", "APIVersion": "apiVersion"}  # fmt: skip


def json_name(go_name: str) -> str:
    """A corev1 Go field's JSON name: HTTPGet -> httpGet, ServiceAccountName -> serviceAccountName."""
    if go_name in _JSON_NAMES:
        return _JSON_NAMES[go_name]
    match = re.match(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z]", go_name)
    head = match.group() if match else ""
    return head.lower() + go_name[len(head) :]


class Kube(Struct):
    """A corev1 struct over its JSON form (a dict)."""

    def __init__(self, data: Mapping[str, Any] | None, kind: str) -> None:
        self.data = data or {}
        self.kind = kind

    def field(self, name: str) -> Any:
        fields = _STRUCTS.get(self.kind, {})
        if name == "TypeMeta" and self.kind == "Pod":
            return Kube(self.data, "TypeMeta")
        key = json_name(name)
        kind = fields.get(name)
        value = self.data.get(key)
        if value is None:
            return _zero(kind)
        return view(value, kind)

    def plain(self) -> Any:
        return self.data

    def json(self) -> str:
        order = _JSON_ORDER.get(self.kind)
        if order is None:
            return go_json(self.data)
        out = {}
        for key, omitempty in order:
            value = self.data.get(key)
            if value in (None, "", 0) and omitempty:
                continue
            out[key] = value if value is not None else 0
        return go_json(ordered(out))


def _zero(kind: Any) -> Any:
    if kind == _STRMAP:
        return StrMap()
    if isinstance(kind, str) and kind in _STRUCTS:
        return Kube({}, kind) if kind in ("ObjectMeta", "TypeMeta", "PodSpec") else None
    if kind in (_STRING, _BOOL, _INT):
        return kind
    return None


def view(value: Any, kind: Any = None) -> Any:
    """A JSON value as the Go value of a corev1 field of `kind`."""
    if kind == _STRMAP and isinstance(value, Mapping):
        return StrMap({str(k): str(v) for k, v in value.items()})
    if isinstance(kind, list) and isinstance(value, list):
        return [view(item, kind[0]) for item in value]
    if isinstance(kind, str) and kind in _STRUCTS and isinstance(value, Mapping):
        return Kube(value, kind)
    if isinstance(value, Mapping):
        return {k: view(v) for k, v in value.items()}
    if isinstance(value, list):
        return [view(v) for v in value]
    return value


class Names(Struct):
    """A Go struct of string fields (types.NamespacedName, metav1.TypeMeta)."""

    def __init__(self, **fields: str) -> None:
        self.fields = fields

    def field(self, name: str) -> Any:
        if name not in self.fields:
            raise FieldError(f"can't evaluate field {name} in type {type(self).__name__}")
        return self.fields[name]


def _go_name(field: descriptor.FieldDescriptor) -> str:
    return "".join(part[:1].upper() + part[1:] for part in field.name.split("_"))


_GO_FIELDS: dict[str, dict[str, descriptor.FieldDescriptor]] = {}


def _fields_of(desc: descriptor.Descriptor) -> dict[str, descriptor.FieldDescriptor]:
    fields = _GO_FIELDS.get(desc.full_name)
    if fields is None:
        fields = {_go_name(f): f for f in desc.fields}
        _GO_FIELDS[desc.full_name] = fields
    return fields


def _lookup(desc: descriptor.Descriptor, name: str) -> tuple[descriptor.FieldDescriptor, bool]:
    """The field a Go name means, and whether it was asked through its Get method."""
    fields = _fields_of(desc)
    if name in fields:
        return fields[name], False
    if name.startswith("Get") and name[3:] in fields:
        return fields[name[3:]], True
    raise FieldError(f"can't evaluate field {name} in type *{desc.full_name}")


class Proto(Struct):
    """A non-nil pointer to a generated protobuf struct."""

    def __init__(self, msg: message.Message) -> None:
        self.msg = msg

    def field(self, name: str) -> Any:
        desc = self.msg.DESCRIPTOR
        if name == "GetValue" and "value" in desc.fields_by_name:
            return _proto_value(self.msg, desc.fields_by_name["value"])
        field, _ = _lookup(desc, name)
        return _proto_value(self.msg, field)

    def plain(self) -> Any:
        from google.protobuf import json_format

        return json_format.MessageToDict(self.msg)

    def go_string(self) -> str:
        return "&{" + str(self.msg).replace("\n", " ").strip() + "}"


class NilProto(Struct):
    """A nil pointer to a protobuf struct: false; its Get methods return zero values."""

    def __init__(self, desc: descriptor.Descriptor) -> None:
        self.desc = desc

    def truth(self) -> bool:
        return False

    def field(self, name: str) -> Any:
        if name == "GetValue" and "value" in self.desc.fields_by_name:
            return _zero_of(self.desc.fields_by_name["value"])
        field, getter = _lookup(self.desc, name)
        if not getter:
            raise FieldError(f"nil pointer evaluating *{self.desc.full_name}.{name}")
        return _zero_of(field)

    def plain(self) -> Any:
        return None

    def go_string(self) -> str:
        return "<nil>"


def _zero_of(field: descriptor.FieldDescriptor) -> Any:
    if field.message_type is not None and not _is_map(field) and not field.is_repeated:
        return NilProto(field.message_type)
    if _is_map(field) or field.is_repeated:
        return StrMap() if _is_map(field) else None
    if field.enum_type is not None:
        return Enum(field.enum_type.values_by_number[0].name, 0)
    return field.default_value


def _is_map(field: descriptor.FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _proto_value(msg: message.Message, field: descriptor.FieldDescriptor) -> Any:
    value = getattr(msg, field.name)
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        if value_field.type == value_field.TYPE_STRING:
            return StrMap(dict(value))
        return {k: Proto(v) if value_field.message_type else v for k, v in value.items()}
    if field.is_repeated:
        if field.message_type is not None:
            return [Proto(v) for v in value]
        if field.enum_type is not None:
            return [Enum(field.enum_type.values_by_number[v].name, v) for v in value]
        return list(value)
    if field.message_type is not None:
        return Proto(value) if msg.HasField(field.name) else NilProto(field.message_type)
    if field.enum_type is not None:
        named = field.enum_type.values_by_number.get(value)
        return Enum(named.name if named else str(value), value)
    return value


class TemplateData(Struct):
    """Istio's SidecarTemplateData: what `.` is in an injection template."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def field(self, name: str) -> Any:
        if name not in self.fields:
            raise FieldError(f"can't evaluate field {name} in type *inject.SidecarTemplateData")
        return self.fields[name]
