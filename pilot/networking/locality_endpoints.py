"""EDS for the clusters whose endpoints a proxy sees by where it runs (locality.py).

The endpoint table of a push is shared by every proxy. Only clusters whose locality settings
make the answer depend on the proxy leave it: those are found once per push (`of_push`), and
the default mesh (locality LB on, no outlier detection, no `distribute`) has none, so it costs
one look at the DestinationRules. For each such cluster, proxies at the same locality (and,
under `failoverPriority`, with the same values of the labels it lists) share one assignment,
built once per push, or kept across pushes while its inputs stay the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from envoy.config.endpoint.v3 import endpoint_pb2

from api.networking.v1alpha3 import destination_rule_pb2 as dr_pb2
from pilot.model.push_context import PushContext
from pilot.model.service import Resolution
from pilot.networking import clusters, endpoints, locality, names
from pilot.networking.cache import piece
from pilot.networking.proxyview import ProxyView
from pkg.xds.resources import Encoded, Resource, Resources, encode

ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


@dataclasses.dataclass(frozen=True)
class LocalityClusters:
    """The clusters whose assignment differs by proxy, with their policy, and every label
    their `failoverPriority` lists (which, with its locality, tells proxies apart)."""

    policies: Mapping[str, locality.ClusterPolicy]
    labels: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.policies)


def of_push(push: PushContext) -> LocalityClusters:
    """Memoized per push."""
    key = ("eds-locality-clusters",)
    found = push.memo.get(key)
    if found is None:
        policies = _find(push)
        labels = sorted({label for p in policies.values() for label in p.priority_labels})
        found = push.memo[key] = LocalityClusters(policies, tuple(labels))
    return found  # type: ignore[return-value]


def split(
    push: PushContext, local: LocalityClusters, wanted: frozenset[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """(the names of `wanted` with a per-proxy answer, the others), once per push for the
    name sets streams share."""
    key = ("eds-locality-split", wanted)
    found = push.memo.get(key)
    if found is None:
        own = wanted.intersection(local.policies)
        found = push.memo[key] = (own, wanted - own)
    return found  # type: ignore[return-value]


def _find(push: PushContext) -> dict[str, locality.ClusterPolicy]:
    mesh = push.mesh.mesh_config
    mesh_wide = locality.cluster_policy(mesh, None) is not None  # a mesh-wide `distribute`
    if not mesh_wide and not any(_may_localize(r.spec) for r in push.destination_rules.values()):
        return {}
    out: dict[str, locality.ClusterPolicy] = {}
    for service in push.services.values():
        if service.resolution is not Resolution.CLIENT_SIDE_LB:
            continue
        rule = push.destination_rule(service.hostname)
        if rule is None and not mesh_wide:
            continue
        for port in service.ports:
            instances = push.index.endpoints_of(service.hostname, port.number)
            several = len({e.locality for e in instances}) > 1
            for name in names.outbound_clusters_of_port(service, port.number, rule):
                parsed = names.parse_cluster(name)
                subset = parsed[2] if parsed is not None else ""
                policy = locality.cluster_policy(
                    mesh, clusters.traffic_policy(push, service.hostname, port.number, subset)
                )
                if policy is None or not policy.differs_by_proxy:
                    continue
                # One locality gets priority 0 from anywhere: the shared answer is right,
                # unless the cluster weighs localities (then each needs its weight) or
                # splits them by labels.
                if several or policy.weighted or policy.priority_labels:
                    out[name] = policy
    return out


def _may_localize(spec: dr_pb2.DestinationRule) -> bool:
    policies = [spec.traffic_policy]
    policies += [s.traffic_policy for s in spec.subsets]
    policies += [level for p in list(policies) for level in p.port_level_settings]
    return any(
        p.HasField("outlier_detection") or p.load_balancer.HasField("locality_lb_setting")
        for p in policies
    )


def proxy_locality(proxy: ProxyView, push: PushContext) -> str:
    """Where the proxy runs: its workload's locality in the registry (from its pod's node or
    label, or its WorkloadEntry), else what its Envoy node says (Istio's setTopologyLabels)."""
    for endpoint in push.index.endpoints_at(proxy.ip):
        if endpoint.locality:
            return endpoint.locality
    return proxy.locality


def for_proxy(
    proxy: ProxyView, push: PushContext, local: LocalityClusters, wanted: frozenset[str]
) -> Resources:
    """The assignments of `wanted` (all in `local`) as this proxy's locality sees them."""
    place = proxy_locality(proxy, push)
    labels = locality.with_topology_labels(proxy.labels, place) if local.labels else {}
    proxy_key = (place, tuple(labels.get(label) for label in local.labels))
    memo_key = ("eds-locality", proxy_key, wanted)
    shared = push.memo.get(memo_key)
    if shared is None:
        encoded = [
            _assignment(push, name, local.policies[name], place, labels) for name in sorted(wanted)
        ]
        shared = push.memo[memo_key] = _from_last(push, proxy_key, wanted, encoded)
    return shared  # type: ignore[return-value]


def _from_last(
    push: PushContext, proxy_key: tuple[object, ...], wanted: frozenset[str], encoded: list[Encoded]
) -> Resources:
    """Made from the last push's set for these proxies when it had the same names, so that it
    remembers which assignments changed (an endpoint push then sends only those)."""
    key = ("eds-locality-latest", proxy_key)
    latest = push.cache.latest(key) if push.cache is not None else None
    if latest is not None and latest[0] == wanted:
        previous: Resources = latest[1]
        changed = [
            e for e in encoded if (old := previous.get(e.name)) is None or old.digest != e.digest
        ]
        out = previous.replace(changed) if changed else previous
    else:
        out = Resources.of(ENDPOINT, encoded)
    if push.cache is not None:
        push.cache.keep(key, (wanted, out))  # one per proxy key: bounded by the localities
    return out


def _assignment(
    push: PushContext,
    name: str,
    policy: locality.ClusterPolicy,
    place: str,
    labels: Mapping[str, str],
) -> Encoded:
    parsed = names.parse_cluster(name)
    assert parsed is not None  # every locality cluster is an outbound cluster of a service
    _, port, _, host = parsed
    inputs = (
        push.index.endpoints_of(host, port),
        push.destination_rule(host),
        push.peer_authentications,
        push.mesh.root_namespace,
        push.mesh.mesh_config.locality_lb_setting,
    )

    def build() -> Encoded:
        assignment, members = endpoints.grouped_assignment(name, push)
        locality.apply(assignment, members, locality.Locality.parse(place), labels, policy)
        return _encode(name, assignment)

    # Kept across pushes by what this cluster's answer depends on: its own labels only.
    key = (place, tuple(labels.get(label) for label in policy.priority_labels))
    return piece(push.cache, ("eds-locality", name, key), inputs, build)


def _encode(name: str, assignment: endpoint_pb2.ClusterLoadAssignment) -> Encoded:
    return encode(ENDPOINT, Resource(name, assignment))
