"""Envoy's bootstrap for one pod: who the proxy is (node) and where it gets the rest (ADS).

Pure functions of the agent's options and environment, after Istio's
`tools/packaging/common/envoy_bootstrap.json`: the same reserved cluster names (`xds-grpc`,
`prometheus_stats`, `agent`), the same static Prometheus (15090) and health (15021) listeners,
and node metadata under Istio's current JSON names, so Pilot reads a node as Istio's would.
"""

from __future__ import annotations

import ipaddress
import json
import pathlib
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from api.mesh.v1alpha1 import proxy_pb2
from pkg.config import locality
from proxy.agent.options import AgentOptions

ISTIO_VERSION = "0.1.0"  # the mesh's own version, as Pilot sees it in ISTIO_VERSION
TRUST_DOMAIN = "cluster.local"
MESH_ID = "cluster.local"
ISTIO_META_PREFIX = "ISTIO_META_"

# Reserved static cluster names (Istio's own).
XDS_CLUSTER = "xds-grpc"
SDS_CLUSTER = "sds-grpc"
PROMETHEUS_CLUSTER = "prometheus_stats"
AGENT_CLUSTER = "agent"

# Named so that readiness can tell them from the listeners Pilot sends.
PROMETHEUS_LISTENER = "envoy-prometheus"
HEALTH_LISTENER = "envoy-health"
AGENT_XDS_LISTENER = "agent-xds"
STATIC_LISTENERS = frozenset({PROMETHEUS_LISTENER, HEALTH_LISTENER, AGENT_XDS_LISTENER})
_TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"

_HTTP2_OPTIONS = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}
_HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
_ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_CONNECTIONS_MONITOR_TYPE = (
    "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3"
    ".DownstreamConnectionsConfig"
)
# Istio's effective limit (2^31 - 1): none, but stated, which Envoy 1.40 asks for at start.
MAX_DOWNSTREAM_CONNECTIONS = 2147483647


def node_id(options: AgentOptions) -> str:
    """`<type>~<ip>~<pod>.<namespace>~<domain>` (domain `<namespace>.svc.cluster.local` unless
    the pod lives on another platform, e.g. `service.consul`), as Pilot parses it."""
    return (
        f"{options.proxy_type}~{options.ip}~{options.pod}.{options.namespace}~{options.dns_domain}"
    )


def service_cluster(options: AgentOptions) -> str:
    """Envoy's node.cluster: the `app` label (a gateway's `istio` label), else `istio-proxy`."""
    key = "istio" if options.proxy_type == "router" else "app"
    return options.labels.get(key) or options.labels.get("app") or "istio-proxy"


def spiffe_identity(options: AgentOptions) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{options.namespace}/sa/{options.service_account}"


def proxy_config(options: AgentOptions) -> dict[str, Any]:
    """The ProxyConfig this proxy runs with, in Istio's JSON form (metadata PROXY_CONFIG)."""
    config = proxy_pb2.ProxyConfig(
        config_path=str(options.run_dir),
        binary_path=str(options.envoy_binary),
        service_cluster=service_cluster(options),
        discovery_address=options.discovery_address,
        proxy_admin_port=options.proxy_admin_port,
        status_port=options.status_port,
        control_plane_auth_policy=proxy_pb2.AuthenticationPolicy.NONE,
        mesh_id=MESH_ID,
    )
    config.drain_duration.FromNanoseconds(round(options.drain_duration * 1e9))
    config.termination_drain_duration.FromNanoseconds(round(options.drain_duration * 1e9))
    config.concurrency.value = options.concurrency
    return json_format.MessageToDict(config)


def node_metadata(options: AgentOptions, environ: Mapping[str, str]) -> dict[str, Any]:
    """Istio's NodeMetadata (pkg/model/proxy.go) under its JSON names.

    `ISTIO_META_<KEY>` variables come first so the agent's own facts win over a stray variable.
    """
    metadata: dict[str, Any] = {
        key[len(ISTIO_META_PREFIX) :]: value
        for key, value in sorted(environ.items())
        if key.startswith(ISTIO_META_PREFIX) and len(key) > len(ISTIO_META_PREFIX)
    }
    pod_ports = [
        {"name": name, "containerPort": port, "protocol": "TCP"}
        for name, port in options.ports.items()
    ]
    metadata.update(
        {
            "NAME": options.pod,
            "NAMESPACE": options.namespace,
            "LABELS": dict(options.labels),
            "INSTANCE_IPS": options.ip,
            "WORKLOAD_NAME": options.workload_name,
            "SERVICE_ACCOUNT": options.service_account,
            "ISTIO_VERSION": ISTIO_VERSION,
            "CLUSTER_ID": options.cluster_id,
            "MESH_ID": MESH_ID,
            # NONE: apps reach the sidecar as their HTTP proxy; REDIRECT: istio-init's iptables
            # capture their traffic, and Pilot gives Envoy its capture listeners.
            "INTERCEPTION_MODE": options.interception_mode,
            "ENVOY_STATUS_PORT": options.envoy_status_port,
            "ENVOY_PROMETHEUS_PORT": options.envoy_prometheus_port,
            # Istio sends the pod's container ports as a JSON string, not a list.
            "POD_PORTS": json.dumps(pod_ports, separators=(",", ":")),
            "PROXY_CONFIG": proxy_config(options),
        }
    )
    if options.annotations:
        metadata["ANNOTATIONS"] = dict(options.annotations)
    if options.sds_socket:
        # Tells Pilot this Envoy can get certificates, so it may be sent TLS config.
        metadata["SDS"] = "true"
    return metadata


def node_locality(options: AgentOptions) -> dict[str, Any]:
    """Envoy's node.locality from the pod's `istio-locality` (or `topology.istio.io/locality`)
    label, as Istio's bootstrap reads it; none without one (Pilot then takes the registry's)."""
    place = locality.from_pod_labels(options.labels)
    if not place:
        return {}
    region, zone, subzone = ([*place.split("/"), "", "", ""])[:3]
    fields = {"region": region, "zone": zone, "sub_zone": subzone}
    return {"locality": {k: v for k, v in fields.items() if v}}


def _socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"protocol": "TCP", "address": address, "port_value": port}}


def _static_cluster(name: str, address: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.250s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(address, port)}}]}
            ],
        },
    }


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"discovery address must be host:port, not {address!r}")
    return host.strip("[]"), int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def xds_cluster(discovery_address: str, tls_identity: str | None = None) -> dict[str, Any]:
    """Pilot's ADS endpoint: HTTP/2 (gRPC), STATIC for an IP, STRICT_DNS for a host name.

    With `tls_identity`, mutual TLS: Envoy presents its workload certificate (SDS `default`)
    and accepts only a Pilot proving that SPIFFE id under the mesh's root (SDS `ROOTCA`).
    """
    host, port = split_host_port(discovery_address)
    cluster = _static_cluster(XDS_CLUSTER, host, port)
    cluster.update(
        {
            "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
            "connect_timeout": "1s",
            "typed_extension_protocol_options": _HTTP2_OPTIONS,
            # A Pilot restart must not leave the stream waiting for TCP to notice.
            "upstream_connection_options": {"tcp_keepalive": {"keepalive_time": 300}},
        }
    )
    if tls_identity:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "common_tls_context": {
                    "tls_certificate_sds_secret_configs": [_sds_secret("default")],
                    "combined_validation_context": {
                        "default_validation_context": {
                            "match_typed_subject_alt_names": [
                                {"san_type": "URI", "matcher": {"exact": tls_identity}}
                            ]
                        },
                        "validation_context_sds_secret_config": _sds_secret("ROOTCA"),
                    },
                    "alpn_protocols": ["h2"],
                },
            },
        }
    return cluster


def _sds_secret(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "sds_config": {
            "api_config_source": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": SDS_CLUSTER}}],
                "set_node_on_first_message_only": True,
            },
            "resource_api_version": "V3",
        },
    }


def sds_cluster(socket: pathlib.Path) -> dict[str, Any]:
    """The node agent's SDS server on its Unix socket, the cluster Pilot's TLS configs name."""
    return {
        "name": SDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": _HTTP2_OPTIONS,
        "load_assignment": {
            "cluster_name": SDS_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": str(socket)}}}}]}
            ],
        },
    }


def _http_listener(
    name: str, address: str, port: int, stat_prefix: str, prefix: str, cluster: str
) -> dict[str, Any]:
    """A listener forwarding one path prefix to one static cluster, as Istio's 15090/15021."""
    manager = {
        "@type": _HCM_TYPE,
        "codec_type": "AUTO",
        "stat_prefix": stat_prefix,
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "backend",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": prefix}, "route": {"cluster": cluster}}],
                }
            ]
        },
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER_TYPE}}
        ],
    }
    return {
        "name": name,
        "address": _socket_address(address, port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def agent_xds_listener(socket: pathlib.Path) -> dict[str, Any]:
    """A Unix socket on which Envoy relays the agent's own xDS stream into `xds-grpc`.

    The agent's name table comes over xDS (NDS) on a stream of its own, with the node Envoy
    has. Through Envoy it leaves with Envoy's mutual TLS (the workload certificate from SDS,
    Pilot's SPIFFE id checked), which gRPC Python cannot do itself: it checks a server's host
    name, and Pilot's certificate carries a SPIFFE URI only. A Unix socket, not a port: no
    capture rule applies and no other pod can reach it."""
    return {
        "name": AGENT_XDS_LISTENER,
        "address": {"pipe": {"path": str(socket), "mode": 0o600}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.tcp_proxy",
                        "typed_config": {
                            "@type": _TCP_PROXY_TYPE,
                            "stat_prefix": AGENT_XDS_LISTENER,
                            "cluster": XDS_CLUSTER,
                        },
                    }
                ]
            }
        ],
    }


def build_bootstrap(
    options: AgentOptions, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The whole bootstrap as a JSON-ready dict (proto field names, as Envoy reads them)."""
    ads_source = {
        "ads": {},
        "resource_api_version": "V3",
        # Istio's choice: no timeout, so Envoy does not go LIVE on an empty config and the
        # health listener only answers once Pilot's first CDS and LDS have been applied.
        "initial_fetch_timeout": "0s",
    }
    return {
        "node": {
            "id": node_id(options),
            "cluster": service_cluster(options),
            "metadata": node_metadata(options, environ or {}),
            **node_locality(options),
        },
        "layered_runtime": {
            "layers": [
                {
                    "name": "global config",
                    # Pilot is ours: a deprecated field it sends is a bug, NACKed loudly.
                    "static_layer": {"envoy.features.fail_on_any_deprecated_feature": True},
                },
                {"name": "admin", "admin_layer": {}},
            ]
        },
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": _CONNECTIONS_MONITOR_TYPE,
                        "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                    },
                }
            ]
        },
        "admin": {
            "address": _socket_address(options.ip, options.proxy_admin_port),
            "profile_path": str(options.run_dir / "envoy.prof"),
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
            },
            "cds_config": dict(ads_source),
            "lds_config": dict(ads_source),
        },
        "static_resources": {
            "clusters": [
                _static_cluster(PROMETHEUS_CLUSTER, options.ip, options.proxy_admin_port),
                _static_cluster(AGENT_CLUSTER, options.ip, options.status_port),
                xds_cluster(
                    options.discovery_address,
                    tls_identity=options.xds_identity if options.xds_tls else None,
                ),
                *([sds_cluster(options.sds_socket)] if options.sds_socket else []),
            ],
            "listeners": [
                _http_listener(
                    PROMETHEUS_LISTENER,
                    options.ip,
                    options.envoy_prometheus_port,
                    "stats",
                    "/stats/prometheus",
                    PROMETHEUS_CLUSTER,
                ),
                _http_listener(
                    HEALTH_LISTENER,
                    options.ip,
                    options.envoy_status_port,
                    "agent",
                    "/healthz/ready",
                    AGENT_CLUSTER,
                ),
                *([agent_xds_listener(options.agent_xds_socket)] if options.dns_capture else []),
            ],
        },
    }


def write_bootstrap(options: AgentOptions, environ: Mapping[str, str] | None = None) -> None:
    options.run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(build_bootstrap(options, environ), indent=2, sort_keys=True)
    temporary = options.bootstrap_path.with_suffix(".tmp")
    temporary.write_text(text + "\n")
    # Atomic: a restarting Envoy never reads half a file.
    temporary.replace(options.bootstrap_path)
