"""MeshConfig: Istio's mesh config YAML (the `mesh` key of the istio ConfigMap), read two ways.

    mixerCheckServer: 127.0.0.1:9091
    mixerReportServer: 127.0.0.1:9091
    policyCheckFailOpen: false

`parse_mesh_config` / `load_mesh_config` read exactly what a file says (Pilot's generators
look at the fields that are set); `apply_mesh_config` lays the YAML over Istio's defaults
(pkg/config/mesh's DefaultMeshConfig), as injection needs every field a template reads.
Field names are protobuf JSON (lowerCamelCase, or the proto's own names); an unknown field or
a wrong type is an error naming the source and the field, as Istio refuses a bad mesh config.
A pod's `proxy.istio.io/config` annotation is YAML of a ProxyConfig applied over the mesh's
`defaultConfig`, its proxyMetadata merged key by key.
"""

from __future__ import annotations

import pathlib
from typing import Any

import yaml
from google.protobuf import json_format

from api.mesh.v1alpha1 import config_pb2, proxy_pb2
from pkg.config.validation.destinationrule import check_locality_lb_setting
from pkg.config.validation.result import FieldPath, ValidationResult

MeshConfig = config_pb2.MeshConfig
ProxyConfig = proxy_pb2.ProxyConfig


class MeshConfigError(ValueError):
    """YAML that is not a MeshConfig (or a ProxyConfig); says where, which field and why."""


def parse_mesh_config(text: str, source: str = "<mesh config>") -> config_pb2.MeshConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MeshConfigError(f"{source}: not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MeshConfigError(f"{source}: a mesh config is a mapping, got {type(data).__name__}")
    mesh = config_pb2.MeshConfig()
    try:
        json_format.ParseDict(data, mesh)
    except json_format.ParseError as error:
        raise MeshConfigError(f"{source}: {error}") from None
    _check_addresses(mesh, source)
    _check_locality(mesh, source)
    return mesh


def _check_locality(mesh: config_pb2.MeshConfig, source: str) -> None:
    """Istio's ValidateMeshConfig checks the mesh-wide setting as a rule's (outlier
    detection taken as given: it is each DestinationRule's)."""
    if not mesh.HasField("locality_lb_setting"):
        return
    out = ValidationResult()
    check_locality_lb_setting(mesh.locality_lb_setting, True, FieldPath("localityLbSetting"), out)
    if out.errors:
        raise MeshConfigError(f"{source}: " + "; ".join(str(e) for e in out.errors))


def _check_addresses(mesh: config_pb2.MeshConfig, source: str) -> None:
    for field in ("mixer_check_server", "mixer_report_server"):
        address = getattr(mesh, field)
        host, _, port = address.rpartition(":")
        if address and (not host or not port.isdigit() or not 0 < int(port) < 65536):
            raise MeshConfigError(
                f"{source}: {json_format_name(field)}: {address!r} is not host:port"
            )
    _check_tracing(mesh.default_config.tracing, source)


def _check_tracing(tracing: proxy_pb2.Tracing, source: str) -> None:
    """Istio's ValidateProxyConfig for `defaultConfig.tracing`."""
    if not 0.0 <= tracing.sampling <= 100.0:
        raise MeshConfigError(
            f"{source}: defaultConfig.tracing.sampling: {tracing.sampling} is not a "
            "percentage between 0.0 and 100.0"
        )
    if tracing.WhichOneof("tracer") == "zipkin":
        address = tracing.zipkin.address
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise MeshConfigError(
                f"{source}: defaultConfig.tracing.zipkin.address: {address!r} is not host:port"
            )


def load_mesh_config(path: str | pathlib.Path) -> config_pb2.MeshConfig:
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise MeshConfigError(f"{path}: {error.strerror}") from None
    return parse_mesh_config(text, str(path))


def json_format_name(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


# Istio's constants: the proxy's config folder, Envoy's path, the service cluster.
CONFIG_PATH = "./etc/istio/proxy"
BINARY_PATH = "/usr/local/bin/envoy"
SERVICE_CLUSTER = "istio-proxy"
DISCOVERY_ADDRESS = "istiod.istio-system.svc:15012"


def default_proxy_config() -> proxy_pb2.ProxyConfig:
    config = proxy_pb2.ProxyConfig(
        config_path=CONFIG_PATH,
        binary_path=BINARY_PATH,
        service_cluster=SERVICE_CLUSTER,
        proxy_admin_port=15000,
        control_plane_auth_policy=proxy_pb2.MUTUAL_TLS,
        discovery_address=DISCOVERY_ADDRESS,
        stat_name_length=189,
        status_port=15020,
    )
    config.drain_duration.FromSeconds(45)
    config.termination_drain_duration.FromSeconds(5)
    return config


def default_mesh_config() -> config_pb2.MeshConfig:
    mesh = config_pb2.MeshConfig(
        enable_tracing=True,
        ingress_service="istio-ingressgateway",
        ingress_controller_mode=config_pb2.MeshConfig.STRICT,
        ingress_class="istio",
        trust_domain="cluster.local",
        root_namespace="istio-system",
        proxy_listen_port=15001,
        proxy_inbound_listen_port=15006,
        default_service_export_to=["*"],
        default_virtual_service_export_to=["*"],
        default_destination_rule_export_to=["*"],
    )
    mesh.protocol_detection_timeout.FromSeconds(0)
    mesh.enable_auto_mtls.value = True
    mesh.outbound_traffic_policy.mode = config_pb2.MeshConfig.OutboundTrafficPolicy.ALLOW_ANY
    mesh.inbound_traffic_policy.mode = config_pb2.MeshConfig.InboundTrafficPolicy.PASSTHROUGH
    mesh.locality_lb_setting.enabled.value = True
    mesh.connect_timeout.FromSeconds(10)
    mesh.dns_refresh_rate.FromSeconds(60)
    mesh.enable_prometheus_merge.value = True
    mesh.default_config.CopyFrom(default_proxy_config())
    return mesh


def _parse_yaml(text: str, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as error:
        raise MeshConfigError(f"{what}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MeshConfigError(f"{what}: must be a mapping, got {type(data).__name__}")
    return data


def apply_mesh_config(
    text: str, base: config_pb2.MeshConfig | None = None
) -> config_pb2.MeshConfig:
    """The mesh ConfigMap's YAML over `base` (Istio's defaults when None)."""
    data = _parse_yaml(text, "mesh config")
    mesh = config_pb2.MeshConfig()
    mesh.CopyFrom(base if base is not None else default_mesh_config())
    proxy = data.pop("defaultConfig", None)
    _merge(data, mesh, "mesh config")
    if proxy is not None:
        if not isinstance(proxy, dict):
            raise MeshConfigError("mesh config: defaultConfig must be a mapping")
        mesh.default_config.CopyFrom(_merge_proxy(proxy, mesh.default_config, "defaultConfig"))
    _check_addresses(mesh, "mesh config")
    return mesh


def apply_proxy_config(text: str, mesh: config_pb2.MeshConfig) -> config_pb2.MeshConfig:
    """A copy of `mesh` whose defaultConfig has the annotation's ProxyConfig YAML applied."""
    data = _parse_yaml(text, "proxy config")
    out = config_pb2.MeshConfig()
    out.CopyFrom(mesh)
    out.default_config.CopyFrom(_merge_proxy(data, mesh.default_config, "proxy config"))
    return out


def _merge_proxy(
    data: dict[str, Any], base: proxy_pb2.ProxyConfig, what: str
) -> proxy_pb2.ProxyConfig:
    merged = proxy_pb2.ProxyConfig()
    merged.CopyFrom(base)
    metadata = dict(base.proxy_metadata)
    _merge(data, merged, what)
    if "proxyMetadata" in data:
        # Istio merges proxyMetadata key by key instead of replacing the map.
        metadata.update(merged.proxy_metadata)
        merged.proxy_metadata.clear()
        merged.proxy_metadata.update(metadata)
    return merged


def _merge(data: dict[str, Any], message: Any, what: str) -> None:
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        # protobuf lists every field after the first line; the first says what and where.
        raise MeshConfigError(f"{what}: {str(error).splitlines()[0]}") from None


def to_yaml(mesh: config_pb2.MeshConfig) -> str:
    """The mesh ConfigMap's `mesh` value for a MeshConfig (camelCase, as Istio writes it)."""
    data = json_format.MessageToDict(mesh, preserving_proto_field_name=False)
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True)
