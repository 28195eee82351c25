"""EDS: the endpoints of one outbound cluster, narrowed to its subset's labels."""

from __future__ import annotations

from typing import Any

from pilot.model.push_context import PushContext
from pilot.model.service import Endpoint, labels_match
from pilot.networking import names, security


def load_assignment(cluster: str, push: PushContext) -> dict[str, Any]:
    """An empty assignment for an unknown cluster, so Envoy stops waiting for it."""
    parsed = names.parse_cluster(cluster)
    endpoints: list[Endpoint] = []
    if parsed is not None and parsed[0] == "outbound":
        _, port, subset, host = parsed
        endpoints = list(push.index.endpoints_of(host, port))
        if subset:
            selector = _subset_labels(push, host, subset)
            endpoints = [
                e for e in endpoints if selector is not None and labels_match(selector, e.labels)
            ]
    by_locality: dict[str, list[dict[str, Any]]] = {}
    for endpoint in endpoints:
        by_locality.setdefault(endpoint.locality, []).append(
            _lb_endpoint(endpoint, _accepts_mtls(push, endpoint))
        )
    return {
        "cluster_name": cluster,
        "endpoints": [
            {**({"locality": _locality(locality)} if locality else {}), "lb_endpoints": lb}
            for locality, lb in sorted(by_locality.items())
        ],
    }


def _accepts_mtls(push: PushContext, endpoint: Endpoint) -> bool:
    """Auto mTLS: the endpoint's sidecar has certificates and its policy is not DISABLE."""
    if not endpoint.speaks_istio_mtls:
        return False
    mode = security.peer_mode(
        push.peer_authentications,
        endpoint.namespace,
        endpoint.labels,
        endpoint.port,
        push.mesh.root_namespace,
    )
    return mode != security.DISABLE


def _lb_endpoint(endpoint: Endpoint, mtls: bool) -> dict[str, Any]:
    # A workload with a sidecar is reached through its inbound listener, never the app port.
    port = names.INBOUND_PORT if endpoint.has_sidecar else endpoint.port
    metadata: dict[str, Any] = {"istio": {"workload": _workload_metadata(endpoint)}}
    if mtls:
        # Picks the cluster's `tlsMode-istio` transport socket for this endpoint.
        metadata["envoy.transport_socket_match"] = {"tlsMode": "istio"}
    out: dict[str, Any] = {
        "endpoint": {
            "address": {"socket_address": {"address": endpoint.address, "port_value": port}}
        },
        "metadata": {"filter_metadata": metadata},
    }
    if endpoint.weight:
        out["load_balancing_weight"] = endpoint.weight
    return out


def _workload_metadata(endpoint: Endpoint) -> str:
    """Istio's `<workload>;<namespace>;<canonical service>;<canonical revision>;<cluster>`:
    a client's Mixer filter reports the server's workload, app and version from it."""
    labels = endpoint.labels
    service = (
        labels.get("service.istio.io/canonical-name") or labels.get("app") or endpoint.workload_name
    )
    revision = (
        labels.get("service.istio.io/canonical-revision") or labels.get("version") or "latest"
    )
    return f"{endpoint.workload_name};{endpoint.namespace};{service};{revision};Kubernetes"


def _subset_labels(push: PushContext, host: str, subset: str) -> dict[str, str] | None:
    rule = push.destination_rule(host)
    if rule is None:
        return None
    found = next((s for s in rule.spec.subsets if s.name == subset), None)
    return dict(found.labels) if found is not None else None


def _locality(text: str) -> dict[str, str]:
    parts = text.split("/")
    return dict(zip(("region", "zone", "sub_zone"), parts, strict=False))
