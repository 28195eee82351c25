"""Locality load balancing: a cluster's EDS priorities and weights as seen from one proxy.

After Istio's `networking/core/loadbalancer` (ApplyLocalityLoadBalancer and its helpers) and
`GetEffectiveLbSetting`. The setting is the DestinationRule's `localityLbSetting`, else
MeshConfig's (enabled by default); `enabled: false` at either level turns it off. Then:

- `distribute` (no outlier detection needed): the first entry whose `from` matches the
  proxy's locality gives each matching locality its share as `load_balancing_weight`;
  localities it names no share for lose their endpoints.
- otherwise, only with outlier detection (Envoy would never fail over without it):
  `failoverPriority` splits each locality by how many of the listed labels an endpoint shares
  with the proxy, then `failover` (or the default) orders by region/zone/subzone: same
  subzone 0, same zone 1, same region 2, other regions 3, and, where `failover` names the
  proxy's region, regions other than its `to` 4. Priorities are then renumbered 0..n.

Everything here is pure; generator.py decides which proxies share an answer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from api.mesh.v1alpha1 import config_pb2
from api.networking.v1alpha3 import destination_rule_pb2 as dr_pb2
from pilot.model.service import Endpoint

# The labels a registry adds to every endpoint (and Pilot to every proxy) from its locality,
# so that `failoverPriority` can name them (Istio's AugmentLabels).
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
SUBZONE_LABEL = "topology.istio.io/subzone"
NETWORK_LABEL = "topology.istio.io/network"
TOPOLOGY_LABELS = (REGION_LABEL, ZONE_LABEL, SUBZONE_LABEL)

Setting = dr_pb2.LocalityLoadBalancerSetting
_DEFAULT = Setting()


@dataclasses.dataclass(frozen=True)
class Locality:
    region: str = ""
    zone: str = ""
    subzone: str = ""

    @classmethod
    def parse(cls, text: str) -> Locality:
        """`region/zone/subzone`, any tail left out (Istio's SplitLocalityLabel)."""
        parts = text.split("/") if text else []
        region, zone, subzone = ([*parts, "", "", ""])[:3]
        return cls(region, zone, subzone)

    def __str__(self) -> str:
        return "/".join((self.region, self.zone, self.subzone)) if self.region else ""

    def matches(self, rule: str) -> bool:
        """Whether a `distribute` locality (`region/zone/*`, `*`, ...) covers this one."""
        region, zone, subzone = ([*rule.split("/"), "", "", ""])[:3]
        return (
            region in ("*", self.region)
            and zone in ("*", "", self.zone)
            and subzone in ("*", "", self.subzone)
        )

    def priority_of(self, other: Locality) -> int:
        """0 same subzone, 1 same zone, 2 same region, 3 elsewhere (Istio's LbPriority)."""
        if self.region != other.region:
            return 3
        if self.zone != other.zone:
            return 2
        return 0 if self.subzone == other.subzone else 1


def with_topology_labels(labels: Mapping[str, str], locality: str) -> dict[str, str]:
    """`labels` plus the region, zone and subzone labels of `locality` (where not empty)."""
    out = dict(labels)
    place = Locality.parse(locality)
    for key, value in zip(TOPOLOGY_LABELS, (place.region, place.zone, place.subzone), strict=True):
        if value:
            out[key] = value
    return out


@dataclasses.dataclass(frozen=True)
class ClusterPolicy:
    """What locality load balancing does to one cluster."""

    setting: Setting
    failover: bool  # outlier detection is set, so Envoy can move down the priorities

    @property
    def weighted(self) -> bool:
        """The cluster needs `locality_weighted_lb_config` (Istio sets it for `distribute`,
        and for failover with explicit `failover` or `failoverPriority`)."""
        explicit = bool(self.setting.failover or self.setting.failover_priority)
        return bool(self.setting.distribute) or (self.failover and explicit)

    @property
    def priority_labels(self) -> tuple[str, ...]:
        """The proxy labels its answer depends on, besides its locality."""
        if self.setting.distribute or not self.failover:
            return ()
        return tuple(label.partition("=")[0] for label in self.setting.failover_priority)

    @property
    def differs_by_proxy(self) -> bool:
        return bool(self.setting.distribute) or self.failover


def cluster_policy(
    mesh: config_pb2.MeshConfig, traffic_policy: dr_pb2.TrafficPolicy | None
) -> ClusterPolicy | None:
    """The effective setting for a cluster whose (subset and port merged) policy is
    `traffic_policy`, or None when locality load balancing does not apply to it."""
    if traffic_policy is not None and traffic_policy.load_balancer.HasField("locality_lb_setting"):
        setting = traffic_policy.load_balancer.locality_lb_setting
    elif mesh.HasField("locality_lb_setting"):
        setting = mesh.locality_lb_setting
    else:
        # Pilot reads a mesh config file without Istio's defaults under it; Istio's default
        # is `localityLbSetting: {enabled: true}`.
        setting = _DEFAULT
    if setting.HasField("enabled") and not setting.enabled.value:
        return None
    failover = traffic_policy is not None and traffic_policy.HasField("outlier_detection")
    policy = ClusterPolicy(setting, failover)
    return policy if policy.differs_by_proxy or policy.weighted else None


def apply(
    assignment: endpoint_pb2.ClusterLoadAssignment,
    members: Sequence[Sequence[Endpoint]],
    proxy_locality: Locality,
    proxy_labels: Mapping[str, str],
    policy: ClusterPolicy,
) -> None:
    """Sets `assignment`'s priorities and weights for a proxy at `proxy_locality`.

    `members[i]` are the endpoints of `assignment.endpoints[i]`, in the same order (their
    labels are what `failoverPriority` compares)."""
    for group in assignment.endpoints:
        # Envoy ignores a locality without a weight once the cluster weighs localities.
        group.load_balancing_weight.value = sum(_weight(lb) for lb in group.lb_endpoints)
    setting = policy.setting
    if setting.distribute:
        _apply_distribute(assignment, proxy_locality, setting.distribute)
    elif policy.failover:
        if setting.failover_priority:
            _apply_failover_priority(assignment, members, proxy_labels, setting.failover_priority)
            if setting.failover:
                _apply_failover(assignment, proxy_locality, setting.failover)
        else:
            _apply_failover(assignment, proxy_locality, setting.failover)


def _weight(lb: endpoint_components_pb2.LbEndpoint) -> int:
    return lb.load_balancing_weight.value if lb.HasField("load_balancing_weight") else 1


def _apply_distribute(
    assignment: endpoint_pb2.ClusterLoadAssignment,
    proxy: Locality,
    distribute: Sequence[Setting.Distribute],
) -> None:
    rule = next((d for d in distribute if proxy.matches(getattr(d, "from"))), None)
    if rule is None:
        return
    unclaimed = set(range(len(assignment.endpoints)))
    for target, share in sorted(rule.to.items()):
        claimed = {
            i: assignment.endpoints[i].load_balancing_weight.value or 1
            for i in sorted(unclaimed)
            if _group_locality(assignment.endpoints[i]).matches(target)
        }
        unclaimed -= claimed.keys()
        total = sum(claimed.values())
        for index, original in claimed.items():
            # A wildcard target shares its weight among the localities it covers.
            weight = math.ceil(original * share / total)
            if weight > 0:
                assignment.endpoints[index].load_balancing_weight.value = weight
    for index in unclaimed:
        del assignment.endpoints[index].lb_endpoints[:]


def _apply_failover(
    assignment: endpoint_pb2.ClusterLoadAssignment,
    proxy: Locality,
    failover: Sequence[Setting.Failover],
) -> None:
    raw: list[int] = []
    for group in assignment.endpoints:
        place = _group_locality(group)
        priority = proxy.priority_of(place)
        if priority == 3:
            rule = next((f for f in failover if getattr(f, "from") == proxy.region), None)
            if rule is not None and place.region != rule.to:
                priority = 4
        # Five places per earlier priority keep a failoverPriority split in its order.
        raw.append(group.priority * 5 + priority)
    _renumber(assignment.endpoints, raw)


def _apply_failover_priority(
    assignment: endpoint_pb2.ClusterLoadAssignment,
    members: Sequence[Sequence[Endpoint]],
    proxy_labels: Mapping[str, str],
    priorities: Sequence[str],
) -> None:
    """Splits each locality by how far down `priorities` an endpoint matches the proxy."""
    if not proxy_labels or not members:
        return
    split: list[endpoint_components_pb2.LocalityLbEndpoints] = []
    for group, endpoints in zip(assignment.endpoints, members, strict=True):
        by_priority: dict[int, list[int]] = {}
        for index, endpoint in enumerate(endpoints):
            labels = with_topology_labels(endpoint.labels, endpoint.locality)
            by_priority.setdefault(_label_priority(proxy_labels, labels, priorities), []).append(
                index
            )
        for priority in sorted(by_priority):
            part = endpoint_components_pb2.LocalityLbEndpoints()
            part.CopyFrom(group)
            del part.lb_endpoints[:]
            part.priority = priority
            for index in by_priority[priority]:
                part.lb_endpoints.add().CopyFrom(group.lb_endpoints[index])
            part.load_balancing_weight.value = sum(_weight(lb) for lb in part.lb_endpoints)
            split.append(part)
    del assignment.endpoints[:]
    assignment.endpoints.extend(split)
    _renumber(assignment.endpoints, [g.priority for g in assignment.endpoints])


def _label_priority(
    proxy_labels: Mapping[str, str], labels: Mapping[str, str], priorities: Sequence[str]
) -> int:
    """0 when every listed label matches; else len - j for the first mismatch at j. A label
    may carry the value to compare with (`label=value`) instead of the proxy's. A mismatch
    of a leading network label does not stop the comparison: it moves the endpoint below
    every endpoint on the proxy's network."""
    lowest = len(priorities)
    adjust = 0
    for position, entry in enumerate(priorities):
        name, has_value, value = entry.partition("=")
        wanted = value if has_value else proxy_labels.get(name)
        if wanted != labels.get(name):
            if position == 0 and name == NETWORK_LABEL:
                adjust = lowest
                continue
            return lowest - position + adjust
    return adjust


def _renumber(
    groups: Sequence[endpoint_components_pb2.LocalityLbEndpoints], raw: list[int]
) -> None:
    """Envoy's priorities run 0..n without gaps: keep the order, close the gaps."""
    rank = {priority: index for index, priority in enumerate(sorted(set(raw)))}
    for group, priority in zip(groups, raw, strict=True):
        group.priority = rank[priority]


def _group_locality(group: endpoint_components_pb2.LocalityLbEndpoints) -> Locality:
    return Locality(group.locality.region, group.locality.zone, group.locality.sub_zone)
