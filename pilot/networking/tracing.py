"""Tracing in the HTTP connection managers, from MeshConfig `enableTracing` and
`defaultConfig.tracing`, as Istio's Pilot configures it without a Telemetry resource
(pilot/pkg/networking/core/tracing.go, its legacy mesh-config path).

    enableTracing: true
    defaultConfig:
      tracing:
        sampling: 100              # percent; 0 or unset: PILOT_TRACE_SAMPLING's default, 1
        zipkin: {address: 127.0.0.1:9411}

Every HCM of a proxy gets Envoy's Zipkin tracer (v2 JSON to `/api/v2/spans`, 128-bit trace
ids, B3 headers, no shared span context), Istio's sampling (client 100, overall 100, random
= the percentage) and Istio's span tags (`istio.canonical_service`, `istio.namespace`, ...).
Istio's bootstrap names the collector's cluster `zipkin`; here Pilot sends that cluster in
CDS, so the proxies need nothing of their own.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from api.mesh.v1alpha1 import config_pb2
from pilot.networking.proxyview import ProxyView

ZIPKIN_CLUSTER = "zipkin"  # Istio's bootstrap name for the collector
ZIPKIN_ENDPOINT = "/api/v2/spans"
DEFAULT_SAMPLING = 1.0  # PILOT_TRACE_SAMPLING's default, percent
_HCM_FILTER = "envoy.filters.network.http_connection_manager"


def zipkin_address(mesh: config_pb2.MeshConfig) -> str:
    """The collector's host:port when tracing is on and a Zipkin tracer is set, else ""."""
    tracing = mesh.default_config.tracing
    if not mesh.enable_tracing or tracing.WhichOneof("tracer") != "zipkin":
        return ""
    return tracing.zipkin.address


def sampling(mesh: config_pb2.MeshConfig) -> float:
    value = mesh.default_config.tracing.sampling
    if value == 0.0:
        return DEFAULT_SAMPLING
    # Istio's rule: a percentage above 100 is a mistake, and falls back to 1.
    return 1.0 if value > 100.0 else value


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"defaultConfig.tracing.zipkin.address: {address!r} is not host:port")
    return host.strip("[]"), int(port)


def collector_clusters(mesh: config_pb2.MeshConfig) -> list[dict[str, Any]]:
    """The `zipkin` cluster the tracers post to; none when tracing is off."""
    address = zipkin_address(mesh)
    if not address:
        return []
    host, port = _split(address)
    try:
        ipaddress.ip_address(host)
        kind = "STATIC"
    except ValueError:
        kind = "STRICT_DNS"
    endpoint = {"address": {"socket_address": {"address": host, "port_value": port}}}
    return [
        {
            "name": ZIPKIN_CLUSTER,
            "type": kind,
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": ZIPKIN_CLUSTER,
                "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
            },
        }
    ]


def _tags(proxy: ProxyView) -> list[dict[str, Any]]:
    """Istio's span tags, with the injector's defaults for the canonical names."""
    labels: Mapping[str, str] = proxy.labels
    metadata = proxy.metadata
    service = (
        labels.get("service.istio.io/canonical-name")
        or labels.get("app.kubernetes.io/name")
        or labels.get("app")
        or "unknown"
    )
    revision = (
        labels.get("service.istio.io/canonical-revision")
        or labels.get("app.kubernetes.io/version")
        or labels.get("version")
        or "latest"
    )
    values = {
        "istio.canonical_revision": revision,
        "istio.canonical_service": service,
        "istio.cluster_id": str(metadata.get("CLUSTER_ID") or "unknown"),
        "istio.mesh_id": str(metadata.get("MESH_ID") or "unknown"),
        "istio.namespace": proxy.namespace or "default",
    }
    return [{"tag": tag, "literal": {"value": value}} for tag, value in sorted(values.items())]


def hcm_tracing(proxy: ProxyView, mesh: config_pb2.MeshConfig) -> dict[str, Any] | None:
    """The HCM's `tracing` for this proxy, or None when tracing is off."""
    address = zipkin_address(mesh)
    if not address:
        return None
    host, _ = _split(address)
    config: dict[str, Any] = {
        "client_sampling": {"value": 100.0},
        "random_sampling": {"value": sampling(mesh)},
        "overall_sampling": {"value": 100.0},
        "custom_tags": _tags(proxy),
        "provider": {
            "name": "envoy.tracers.zipkin",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                "collector_cluster": ZIPKIN_CLUSTER,
                "collector_endpoint": ZIPKIN_ENDPOINT,
                "collector_endpoint_version": "HTTP_JSON",
                "collector_hostname": host,
                "trace_id_128bit": True,
                "shared_span_context": False,
            },
        },
    }
    max_path = mesh.default_config.tracing.max_path_tag_length
    if max_path:
        config["max_path_tag_length"] = max_path
    return config


def config_key(config: dict[str, Any] | None) -> str:
    """`config` as a key: proxies whose tracing configs are equal may share listeners."""
    return json.dumps(config, sort_keys=True) if config is not None else ""


def apply_tracing(
    listeners: list[dict[str, Any]], config: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Set `config` (hcm_tracing's) as `tracing` on every HTTP connection manager of
    `listeners` (in place; returned); None leaves them untraced."""
    if config is None:
        return listeners
    for listener in listeners:
        for chain in listener.get("filter_chains", ()):
            for network_filter in chain.get("filters", ()):
                if network_filter.get("name") == _HCM_FILTER:
                    network_filter["typed_config"]["tracing"] = config
    return listeners
