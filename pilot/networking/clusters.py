"""CDS: outbound clusters per service port and subset, inbound clusters per local port.

Istio's `cluster.go`: `outbound|<port>|<subset>|<host>` with EDS, load balancing,
connection pools and outlier detection from the DestinationRule (subset settings
override the rule's, port-level settings override both).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.networking.v1alpha3 import destination_rule_pb2 as dr_pb2
from pilot.model.push_context import PushContext
from pilot.model.service import Endpoint, Resolution, Service, spiffe_identity
from pilot.networking import locality, names, security
from pilot.networking.durations import duration

_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_HTTP2_OPTIONS = {
    _HTTP_OPTIONS: {
        "@type": "type.googleapis.com/" + _HTTP_OPTIONS,
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}
_MAX_UINT32 = 2**32 - 1
_LB_POLICY = {
    dr_pb2.LoadBalancerSettings.ROUND_ROBIN: "ROUND_ROBIN",
    dr_pb2.LoadBalancerSettings.LEAST_CONN: "LEAST_REQUEST",
    dr_pb2.LoadBalancerSettings.LEAST_REQUEST: "LEAST_REQUEST",
    dr_pb2.LoadBalancerSettings.RANDOM: "RANDOM",
    dr_pb2.LoadBalancerSettings.UNSPECIFIED: "LEAST_REQUEST",  # Istio's default since 1.14
}


def outbound_clusters(
    push: PushContext, services: Iterable[Service], *, mtls: bool = False
) -> list[dict[str, Any]]:
    """`mtls`: the calling proxy holds Istio certificates, so it may originate mutual TLS."""
    out: list[dict[str, Any]] = []
    for service in services:
        rule = push.destination_rule(service.hostname)
        spec: dr_pb2.DestinationRule | None = rule.spec if rule is not None else None
        for port in service.ports:
            base = spec.traffic_policy if spec is not None else None
            out.append(_outbound(push, service, port.number, "", base, mtls))
            for subset in spec.subsets if spec is not None else ():
                policy = _merge(
                    base, subset.traffic_policy if subset.HasField("traffic_policy") else None
                )
                out.append(_outbound(push, service, port.number, subset.name, policy, mtls))
    return out


# The source a captured sidecar's inbound connections to the app come from: iptables leaves
# it alone, so they are not captured again (Istio's InboundPassthroughBindIpv4).
INBOUND_PASSTHROUGH_BIND = "127.0.0.6"


def inbound_clusters(
    endpoints: Iterable[Endpoint], *, bind: str | None = None
) -> list[dict[str, Any]]:
    """One static cluster per port the local app serves, straight to the app (from `bind`,
    for a captured sidecar)."""
    seen: dict[int, dict[str, Any]] = {}
    for endpoint in endpoints:
        if endpoint.port in seen:
            continue
        cluster = {
            "name": names.inbound_cluster(endpoint.port),
            "type": "STATIC",
            "connect_timeout": "10s",
            "load_assignment": {
                "cluster_name": names.inbound_cluster(endpoint.port),
                "endpoints": [{"lb_endpoints": [_lb_endpoint(endpoint.address, endpoint.port)]}],
            },
        }
        if endpoint.service_port.protocol.is_http2:
            cluster["typed_extension_protocol_options"] = _HTTP2_OPTIONS
        if bind is not None:
            cluster["upstream_bind_config"] = {"source_address": {"address": bind, "port_value": 0}}
        seen[endpoint.port] = cluster
    return list(seen.values())


def blackhole_cluster() -> dict[str, Any]:
    return {"name": names.BLACKHOLE_CLUSTER, "type": "STATIC", "connect_timeout": "10s"}


def passthrough_clusters(connect_timeout: float) -> list[dict[str, Any]]:
    """A captured sidecar's original-destination clusters: `PassthroughCluster` (outbound,
    ALLOW_ANY) and `InboundPassthroughCluster` (inbound ports no service declares)."""
    outbound = {
        "name": names.PASSTHROUGH_CLUSTER,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": f"{connect_timeout}s",
    }
    inbound = {
        **outbound,
        "name": names.INBOUND_PASSTHROUGH_CLUSTER,
        "upstream_bind_config": {
            "source_address": {"address": INBOUND_PASSTHROUGH_BIND, "port_value": 0}
        },
    }
    return [outbound, inbound]


def _outbound(
    push: PushContext,
    service: Service,
    port: int,
    subset: str,
    policy: dr_pb2.TrafficPolicy | None,
    mtls: bool,
) -> dict[str, Any]:
    name = names.outbound_cluster(service.hostname, port, subset)
    cluster: dict[str, Any] = {
        "name": name,
        "connect_timeout": f"{push.mesh.connect_timeout}s",
    }
    if service.resolution in (Resolution.DNS_LB, Resolution.DNS_ROUND_ROBIN_LB):
        # Istio's DNS and DNS_ROUND_ROBIN: Envoy resolves the endpoints' names (else the
        # host's), keeping every address (STRICT_DNS) or one at a time (LOGICAL_DNS, which
        # takes a single endpoint).
        logical = service.resolution is Resolution.DNS_ROUND_ROBIN_LB
        cluster["type"] = "LOGICAL_DNS" if logical else "STRICT_DNS"
        cluster["dns_lookup_family"] = "V4_ONLY"
        targets = [(e.address, e.port) for e in push.index.endpoints_of(service.hostname, port)]
        targets = list(dict.fromkeys(targets)) or [(service.hostname, port)]
        cluster["load_assignment"] = {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [_lb_endpoint(a, p) for a, p in targets[: 1 if logical else None]]}
            ],
        }
    elif service.resolution is Resolution.PASSTHROUGH:
        cluster["type"] = "ORIGINAL_DST"
        cluster["lb_policy"] = "CLUSTER_PROVIDED"
    else:
        cluster["type"] = "EDS"
        cluster["eds_cluster_config"] = {
            "service_name": name,
            "eds_config": {"ads": {}, "resource_api_version": "V3"},
        }
    service_port = service.port(port)
    if service_port is not None and service_port.protocol.is_http2:
        cluster["typed_extension_protocol_options"] = _HTTP2_OPTIONS
    policy = _for_port(policy, port)
    if service.resolution is not Resolution.PASSTHROUGH:
        # Istio's defaults, DestinationRule or not: no limit but the rule's. Envoy's own
        # (1024 connections, requests and pending, 3 retries at once) would break a busy
        # service's calls, or its retries, where no rule asked for it.
        cluster["circuit_breakers"] = {"thresholds": [_default_thresholds()]}
    if policy is not None:
        _apply_policy(cluster, policy)
    elif service.resolution is not Resolution.PASSTHROUGH:
        cluster["lb_policy"] = _LB_POLICY[dr_pb2.LoadBalancerSettings.UNSPECIFIED]
    local = locality.cluster_policy(push.mesh.mesh_config, policy)
    if local is not None and local.weighted and cluster["type"] == "EDS":
        # EDS then gives every locality its weight (networking/locality.py). A DNS cluster's
        # one unweighted locality would be ignored under it, so those keep Envoy's default.
        cluster.setdefault("common_lb_config", {})["locality_weighted_lb_config"] = {}
    if mtls and not service.mesh_external:
        _apply_mtls(cluster, push, service, port, subset, policy)
    return cluster


def traffic_policy(
    push: PushContext, host: str, port: int, subset: str
) -> dr_pb2.TrafficPolicy | None:
    """The DestinationRule policy of one cluster: the subset's over the rule's, then the
    port's level (what CDS builds the cluster from, and EDS its locality priorities)."""
    rule = push.destination_rule(host)
    if rule is None:
        return None
    spec: dr_pb2.DestinationRule = rule.spec
    policy: dr_pb2.TrafficPolicy | None = spec.traffic_policy
    if subset:
        found = next((s for s in spec.subsets if s.name == subset), None)
        if found is not None and found.HasField("traffic_policy"):
            policy = _merge(policy, found.traffic_policy)
    return _for_port(policy, port)


def _apply_mtls(
    cluster: dict[str, Any],
    push: PushContext,
    service: Service,
    port: int,
    subset: str,
    policy: dr_pb2.TrafficPolicy | None,
) -> None:
    """ISTIO_MUTUAL from the DestinationRule, else auto mTLS: TLS to exactly the endpoints
    whose sidecar holds Istio certificates and accepts mTLS (EDS marks them), plaintext to
    the others. The server must prove one of the identities the service's workloads run as."""
    identities = {
        spiffe_identity(e.namespace, e.service_account, push.mesh.trust_domain)
        for e in push.index.endpoints_of(service.hostname, port)
        if e.service_account
    }
    identities |= {
        i if i.startswith("spiffe://") else f"spiffe://{i}" for i in service.service_accounts
    }
    tls = security.upstream_tls(security.sni(port, subset, service.hostname), identities)
    mode = policy.tls.mode if policy is not None and policy.HasField("tls") else None
    if mode == dr_pb2.ClientTLSSettings.ISTIO_MUTUAL:
        cluster["transport_socket"] = tls
    elif mode is None:
        cluster["transport_socket_matches"] = [
            {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": tls},
            {"name": "tlsMode-disabled", "match": {}, "transport_socket": security.RAW_BUFFER},
        ]


def _apply_policy(cluster: dict[str, Any], policy: dr_pb2.TrafficPolicy) -> None:
    lb = policy.load_balancer
    if cluster["type"] != "ORIGINAL_DST":
        simple = (
            lb.simple
            if lb.WhichOneof("lb_policy") == "simple"
            else dr_pb2.LoadBalancerSettings.UNSPECIFIED
        )
        cluster["lb_policy"] = _LB_POLICY.get(simple, "LEAST_REQUEST")
        if lb.WhichOneof("lb_policy") == "consistent_hash":
            _apply_consistent_hash(cluster, lb.consistent_hash)
    if policy.HasField("connection_pool"):
        _apply_connection_pool(cluster, policy.connection_pool)
    if policy.HasField("outlier_detection"):
        cluster["outlier_detection"] = _outlier(policy.outlier_detection)
        # Istio turns Envoy's panic threshold (50%) off unless minHealthPercent says
        # otherwise: with the few pods a service has, panic would send traffic to the
        # endpoints just ejected.
        cluster.setdefault("common_lb_config", {})["healthy_panic_threshold"] = {
            "value": float(policy.outlier_detection.min_health_percent)
        }


def _default_thresholds() -> dict[str, Any]:
    return {
        "max_connections": _MAX_UINT32,
        "max_pending_requests": _MAX_UINT32,
        "max_requests": _MAX_UINT32,
        "max_retries": _MAX_UINT32,
        "track_remaining": True,
    }


def _apply_consistent_hash(
    cluster: dict[str, Any], hashing: dr_pb2.LoadBalancerSettings.ConsistentHashLB
) -> None:
    """The ring (or Maglev table) of a consistent-hash cluster; the hash key itself is the
    route's (httproute.hash_policy), as Envoy hashes per request."""
    if hashing.HasField("maglev"):
        cluster["lb_policy"] = "MAGLEV"
        if hashing.maglev.table_size:
            cluster["maglev_lb_config"] = {"table_size": hashing.maglev.table_size}
        return
    cluster["lb_policy"] = "RING_HASH"
    ring = hashing.ring_hash.minimum_ring_size or hashing.minimum_ring_size
    if ring:
        cluster["ring_hash_lb_config"] = {"minimum_ring_size": ring}


def _apply_connection_pool(cluster: dict[str, Any], pool: dr_pb2.ConnectionPoolSettings) -> None:
    """Istio's `applyConnectionPool`: limits over the defaults, then the per-connection HTTP
    options (requests per connection, idle timeout, lifetime)."""
    thresholds = _default_thresholds()
    if pool.tcp.max_connections > 0:
        thresholds["max_connections"] = pool.tcp.max_connections
    if pool.http.http1_max_pending_requests > 0:
        thresholds["max_pending_requests"] = pool.http.http1_max_pending_requests
    if pool.http.http2_max_requests > 0:
        thresholds["max_requests"] = pool.http.http2_max_requests
    if pool.http.max_retries > 0:
        thresholds["max_retries"] = pool.http.max_retries
    cluster["circuit_breakers"] = {"thresholds": [thresholds]}
    if pool.tcp.HasField("connect_timeout"):
        cluster["connect_timeout"] = duration(pool.tcp.connect_timeout)
    common: dict[str, Any] = {}
    if pool.http.HasField("idle_timeout"):
        common["idle_timeout"] = duration(pool.http.idle_timeout)
    elif pool.tcp.HasField("idle_timeout"):
        common["idle_timeout"] = duration(pool.tcp.idle_timeout)
    if pool.http.max_requests_per_connection > 0:
        common["max_requests_per_connection"] = pool.http.max_requests_per_connection
    if pool.tcp.HasField("max_connection_duration"):
        common["max_connection_duration"] = duration(pool.tcp.max_connection_duration)
    if not common:
        return
    options = cluster.setdefault("typed_extension_protocol_options", {})
    http = options.get(_HTTP_OPTIONS)
    # Copied, never updated in place: _HTTP2_OPTIONS is shared by every HTTP/2 cluster.
    http = (
        dict(http)
        if http is not None
        else {
            "@type": "type.googleapis.com/" + _HTTP_OPTIONS,
            "explicit_http_config": {"http_protocol_options": {}},
        }
    )
    http["common_http_protocol_options"] = common
    cluster["typed_extension_protocol_options"] = {**options, _HTTP_OPTIONS: http}


def _outlier(od: dr_pb2.OutlierDetection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if od.HasField("consecutive_5xx_errors"):
        # 0 switches 5xx ejection off: Envoy must then not enforce it either.
        count = od.consecutive_5xx_errors.value
        out["consecutive_5xx"] = count
        out["enforcing_consecutive_5xx"] = 100 if count else 0
    elif od.consecutive_errors:
        out["consecutive_gateway_failure"] = od.consecutive_errors
        out["enforcing_consecutive_gateway_failure"] = 100
        out["consecutive_5xx"] = 0
        out["enforcing_consecutive_5xx"] = 0
    if od.HasField("consecutive_gateway_errors"):
        count = od.consecutive_gateway_errors.value
        out["consecutive_gateway_failure"] = count
        out["enforcing_consecutive_gateway_failure"] = 100 if count else 0
    if od.HasField("interval"):
        out["interval"] = duration(od.interval)
    if od.HasField("base_ejection_time"):
        out["base_ejection_time"] = duration(od.base_ejection_time)
    if od.max_ejection_percent:
        out["max_ejection_percent"] = od.max_ejection_percent
    out["enforcing_success_rate"] = 0  # Istio turns success-rate ejection off
    return out


def _merge(
    base: dr_pb2.TrafficPolicy | None, override: dr_pb2.TrafficPolicy | None
) -> dr_pb2.TrafficPolicy | None:
    """Subset settings replace the rule's settings field by field (Istio's MergeTrafficPolicy)."""
    if override is None:
        return base
    if base is None:
        return override
    merged = dr_pb2.TrafficPolicy()
    merged.CopyFrom(base)
    for field in ("load_balancer", "connection_pool", "outlier_detection", "tls"):
        if override.HasField(field):
            getattr(merged, field).CopyFrom(getattr(override, field))
    if override.port_level_settings:
        del merged.port_level_settings[:]
        merged.port_level_settings.extend(override.port_level_settings)
    return merged


def _for_port(policy: dr_pb2.TrafficPolicy | None, port: int) -> dr_pb2.TrafficPolicy | None:
    if policy is None:
        return None
    for level in policy.port_level_settings:
        if level.port.number == port:
            merged = dr_pb2.TrafficPolicy()
            merged.CopyFrom(policy)
            for field in ("load_balancer", "connection_pool", "outlier_detection", "tls"):
                if level.HasField(field):
                    getattr(merged, field).CopyFrom(getattr(level, field))
            return merged
    return policy


def _lb_endpoint(address: str, port: int) -> dict[str, Any]:
    return {"endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}}
