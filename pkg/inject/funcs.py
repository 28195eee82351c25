"""The functions Istio adds to its injection templates (pkg/kube/inject/template.go's
InjectionFuncmap), over the Go views of godata.py. They win over Sprig's of the same name
(`indent`, `contains`, `toYaml`), as in Istio."""

from __future__ import annotations

import datetime
import json
import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf import message as pb_message

from pkg.config import mesh as meshconfig
from pkg.gotemplate import StrMap, Struct
from pkg.gotemplate.funcs import go_json, plain, to_yaml
from pkg.gotemplate.values import ExecError, format_float, to_string
from pkg.inject.godata import Kube, NilProto, Proto


def _sprint(value: Any) -> str:
    """fmt.Sprint (a nil is <nil>, not the template's <no value>)."""
    return "<nil>" if value is None else to_string(value)


def isset(mapping: Any, key: str) -> bool:
    return isinstance(mapping, Mapping) and key in mapping


def annotation(meta: Any, name: str, default: Any) -> str:
    annotations = meta.field("Annotations") if isinstance(meta, Struct) else {}
    if name in annotations:
        return str(annotations[name])
    return _sprint(default)


def value_or_default(value: Any, default: Any) -> Any:
    return default if value in ("", None) else value


def exclude_inbound_port(port: Any, excluded: str) -> str:
    port_text = _sprint(port).strip()
    if not port_text or port_text == "0":
        return excluded
    out = []
    for item in excluded.split(","):
        if item == port_text:
            return excluded
        if item.strip():
            out.append(item.strip())
    out.append(port_text)
    return ",".join(out)


def _container_ports(containers: Any, keep: Callable[[Any], bool]) -> str:
    parts: list[str] = []
    for container in containers or []:
        if not keep(container):
            continue
        for port in container.field("Ports") or []:
            if port.field("Protocol") in ("UDP", "SCTP"):
                continue
            parts.append(str(port.field("ContainerPort")))
    return ",".join(parts)


def include_inbound_ports(containers: Any) -> str:
    return _container_ports(containers, lambda _: True)


def application_ports(containers: Any) -> str:
    return _container_ports(containers, lambda c: c.field("Name") != "istio-proxy")


def to_json_map_of_strings(mapping: Any) -> str:
    if mapping is None:
        return "{}"
    return go_json(dict(mapping))


def from_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return "{}"


def struct_to_json(value: Any) -> str:
    if value is None:
        return "{}"
    if isinstance(value, Kube):
        return value.json()
    return go_json(plain(value))


def proto_to_json(value: Any) -> str:
    if isinstance(value, NilProto) or value is None:
        return "{}"
    if not isinstance(value, Proto):
        raise ExecError(f"protoToJSON of {type(value).__name__}")
    msg = value.msg
    if isinstance(msg, meshconfig.ProxyConfig):
        msg = clean_proxy_config(msg)
    data = json_format.MessageToDict(msg)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def clean_proxy_config(config: pb_message.Message) -> pb_message.Message:
    """The ProxyConfig without the fields that equal Istio's defaults (a smaller pod spec)."""
    out = meshconfig.ProxyConfig()
    out.CopyFrom(config)
    defaults = meshconfig.default_proxy_config()
    for name in ("config_path", "binary_path", "control_plane_auth_policy", "discovery_address",
                 "proxy_admin_port", "stat_name_length", "status_port"):  # fmt: skip
        if getattr(out, name) == getattr(defaults, name):
            out.ClearField(name)
    if (
        out.WhichOneof("cluster_name") == "service_cluster"
        and out.service_cluster == defaults.service_cluster
    ):
        out.ClearField("service_cluster")
    for name in ("drain_duration", "termination_drain_duration", "envoy_metrics_service",
                 "envoy_access_log_service", "tracing", "concurrency"):  # fmt: skip
        if out.HasField(name) == defaults.HasField(name) and getattr(out, name) == getattr(
            defaults, name
        ):
            out.ClearField(name)
    return out


def to_yaml_istio(value: Any) -> str:
    return to_yaml(value)


def indent(spaces: int, source: str) -> str:
    """Istio's indent: every line but the first is indented."""
    lines = source.split("\n")
    return "\n".join([lines[0]] + [" " * spaces + line for line in lines[1:]])


def directory(path: str) -> str:
    return posixpath.split(path)[0] + ("/" if posixpath.split(path)[0] not in ("", "/") else "")


def flipped_contains(needle: str, haystack: str) -> bool:
    return needle in haystack


def append_multus_network(existing: str, network: str) -> str:
    if not existing:
        return network
    close = existing.rfind("]")
    if close != -1:
        try:
            networks = json.loads(existing)
        except ValueError:
            return existing
        namespace, _, name = network.rpartition("/")
        for entry in networks:
            if (
                isinstance(entry, dict)
                and entry.get("name") == name
                and (entry.get("namespace") or "") == namespace
            ):
                return existing
        extra = (
            f', {{"name": "{name}", "namespace": "{namespace}"}}'
            if namespace
            else f', {{"name": "{name}"}}'
        )
        return existing[:close] + extra + existing[close:]
    if any(item.strip() == network for item in existing.split(",")):
        return existing
    return existing + ", " + network


def env(key: str, default: str) -> str:
    return os.environ.get(key) or default


def omit(mapping: Mapping[str, str], *keys: str) -> StrMap:
    return StrMap({k: v for k, v in (mapping or {}).items() if k not in keys})


def strdict(*values: str) -> StrMap:
    out = StrMap()
    for i in range(0, len(values), 2):
        out[values[i]] = values[i + 1] if i + 1 < len(values) else ""
    return out


def merge_maps(*maps: Mapping[str, str]) -> StrMap | None:
    if not maps:
        return None
    out = StrMap()
    for mapping in maps:
        out.update(mapping or {})
    return out


def to_json_map(*maps: Mapping[str, str]) -> str:
    return go_json(dict(merge_maps(*maps) or {}))


def omit_nil(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = {k: omit_nil(v) for k, v in value.items() if v is not None}
        out = {k: v for k, v in out.items() if v is not None}
        return out or None
    if isinstance(value, list):
        items = [omit_nil(v) for v in value if v is not None]
        items = [v for v in items if v is not None]
        return items or None
    return value


def format_duration(value: Any) -> str:
    if isinstance(value, NilProto) or value is None:
        return "0s"
    return go_duration(value.msg.ToTimedelta())


def go_duration(delta: datetime.timedelta) -> str:
    """time.Duration.String: 1h2m3.5s, 500ms, 0s."""
    nanos = delta // datetime.timedelta(microseconds=1) * 1000
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return sign + format_float(nanos / size) + unit
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = format_float(rest / 1e9)
    text = f"{seconds}s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def otel_resource_attributes(
    mesh: Any, annotations: Any, labels: Any, namespace: str, containers: Any
) -> str:
    providers = mesh.field("ExtensionProviders") if isinstance(mesh, Proto) else []
    enriched = False
    for provider in providers or []:
        otel = provider.field("GetOpentelemetry")
        if isinstance(otel, Proto) and otel.msg.DESCRIPTOR.fields_by_name.get(
            "service_attribute_enrichment"
        ):
            enum_value = otel.field("ServiceAttributeEnrichment")
            if getattr(enum_value, "name", "") == "OTEL_SEMANTIC_CONVENTIONS":
                enriched = True
    if not enriched:
        return ""
    annotations, labels = annotations or {}, labels or {}
    attrs = []
    if annotations.get("resource.opentelemetry.io/service.namespace"):
        attrs.append(
            "service.namespace=" + annotations["resource.opentelemetry.io/service.namespace"]
        )
    elif namespace:
        attrs.append("service.namespace=" + namespace)
    if annotations.get("resource.opentelemetry.io/service.version"):
        attrs.append("service.version=" + annotations["resource.opentelemetry.io/service.version"])
    elif labels.get("app.kubernetes.io/version"):
        attrs.append("service.version=" + labels["app.kubernetes.io/version"])
    if annotations.get("resource.opentelemetry.io/service.instance.id"):
        attrs.append(
            "service.instance.id=" + annotations["resource.opentelemetry.io/service.instance.id"]
        )
    elif containers:
        attrs.append(f"service.instance.id={namespace}.$(POD_NAME).{containers[0].field('Name')}")
    return ",".join(attrs)


INJECTION_FUNCS: dict[str, Callable[..., Any]] = {
    "formatDuration": format_duration, "isset": isset, "excludeInboundPort": exclude_inbound_port,
    "includeInboundPorts": include_inbound_ports, "kubevirtInterfaces": lambda s: s,
    "excludeInterfaces": lambda s: s, "applicationPorts": application_ports,
    "annotation": annotation, "valueOrDefault": value_or_default, "toJSON": to_json_map_of_strings,
    "fromJSON": from_json, "structToJSON": struct_to_json, "protoToJSON": proto_to_json,
    "toYaml": to_yaml_istio, "indent": indent, "directory": directory,
    "contains": flipped_contains, "toLower": str.lower, "appendMultusNetwork": append_multus_network,
    "env": env, "omit": omit, "strdict": strdict, "toJsonMap": to_json_map, "mergeMaps": merge_maps,
    "omitNil": omit_nil, "otelResourceAttributes": otel_resource_attributes,
}  # fmt: skip
