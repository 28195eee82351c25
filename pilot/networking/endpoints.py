"""EDS: the endpoints of one outbound cluster, narrowed to its subset's labels.

Built as protos directly (not Envoy JSON parsed afterwards, as the other types are): a mesh
has as many assignments as clusters, and they are rebuilt whenever endpoints move.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from pilot.model.push_context import PushContext
from pilot.model.service import Endpoint, labels_match
from pilot.networking import names, security


def load_assignment(cluster: str, push: PushContext) -> endpoint_pb2.ClusterLoadAssignment:
    """An empty assignment for an unknown cluster, so Envoy stops waiting for it."""
    return grouped_assignment(cluster, push)[0]


def grouped_assignment(
    cluster: str, push: PushContext
) -> tuple[endpoint_pb2.ClusterLoadAssignment, list[list[Endpoint]]]:
    """The assignment, one LocalityLbEndpoints per locality (sorted), and beside it the
    endpoints of each, in the same order (what locality failover compares labels of)."""
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
    by_locality: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        by_locality.setdefault(endpoint.locality, []).append(endpoint)
    assignment = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    members: list[list[Endpoint]] = []
    for locality, group_members in sorted(by_locality.items()):
        group = assignment.endpoints.add()
        if locality:
            parts = locality.split("/")
            group.locality.CopyFrom(
                _locality_message(dict(zip(("region", "zone", "sub_zone"), parts, strict=False)))
            )
        for endpoint in group_members:
            _add_lb_endpoint(group, endpoint, _accepts_mtls(push, endpoint))
        members.append(group_members)
    return assignment, members


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


def _add_lb_endpoint(
    group: endpoint_components_pb2.LocalityLbEndpoints, endpoint: Endpoint, mtls: bool
) -> None:
    # A workload with a sidecar but no capture is reached through its inbound listener; a
    # captured one at the app's port, which iptables hands to its virtualInbound (Istio's).
    port = names.INBOUND_PORT if endpoint.has_sidecar and not endpoint.captured else endpoint.port
    lb = group.lb_endpoints.add()
    address = lb.endpoint.address.socket_address
    address.address = endpoint.address
    address.port_value = port
    metadata = lb.metadata.filter_metadata
    metadata["istio"].update({"workload": _workload_metadata(endpoint)})
    if mtls:
        # Picks the cluster's `tlsMode-istio` transport socket for this endpoint.
        metadata["envoy.transport_socket_match"].update({"tlsMode": "istio"})
    if endpoint.weight:
        lb.load_balancing_weight.value = endpoint.weight


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


def _locality_message(fields: dict[str, str]) -> base_pb2.Locality:
    return base_pb2.Locality(**fields)
