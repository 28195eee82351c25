"""Locality priorities and weights, as Istio's loadbalancer package computes them."""

from __future__ import annotations

from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import json_format

from api.mesh.v1alpha1 import config_pb2
from api.networking.v1alpha3 import destination_rule_pb2 as dr_pb2
from pilot.model.service import Endpoint, Port, Protocol
from pilot.networking import locality
from pilot.networking.locality import ClusterPolicy, Locality

HTTP = Port("http", 8000, Protocol.HTTP)


def endpoint(address: str, place: str, **labels: str) -> Endpoint:
    return Endpoint("svc.default.svc.cluster.local", HTTP, address, 8000, labels, "default",
                    locality=place)  # fmt: skip


def assignment(*members: list[Endpoint]) -> endpoint_pb2.ClusterLoadAssignment:
    """One LocalityLbEndpoints per list, at the first member's locality."""
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name="c")
    for group_members in members:
        group = out.endpoints.add()
        place = Locality.parse(group_members[0].locality)
        group.locality.region, group.locality.zone = place.region, place.zone
        group.locality.sub_zone = place.subzone
        for e in group_members:
            group.lb_endpoints.add().endpoint.address.socket_address.address = e.address
    return out


def setting(**fields: object) -> dr_pb2.LocalityLoadBalancerSetting:
    return json_format.ParseDict(fields, dr_pb2.LocalityLoadBalancerSetting())


def priorities(out: endpoint_pb2.ClusterLoadAssignment) -> dict[str, int]:
    return {
        lb.endpoint.address.socket_address.address: group.priority
        for group in out.endpoints
        for lb in group.lb_endpoints
    }


GROUPS = [
    [endpoint("10.0.0.1", "region1/zone1/sub1")],
    [endpoint("10.0.0.2", "region1/zone1/sub2")],
    [endpoint("10.0.0.3", "region1/zone2/sub1")],
    [endpoint("10.0.0.4", "region2/zone3/sub1")],
    [endpoint("10.0.0.5", "region3/zone4/sub1")],
]


def test_a_locality_parses_and_prints_as_istio_writes_it():
    assert Locality.parse("region1/zone1") == Locality("region1", "zone1", "")
    assert str(Locality.parse("region1/zone1")) == "region1/zone1/"
    assert str(Locality.parse("")) == ""
    assert Locality("r", "z", "s").matches("r/*")
    assert Locality("r", "z", "s").matches("*")
    assert Locality("r", "z", "s").matches("r/z")
    assert not Locality("r", "z", "s").matches("r/y/*")


def test_default_failover_orders_subzone_zone_region_then_the_rest():
    out = assignment(*GROUPS)
    policy = ClusterPolicy(setting(), failover=True)
    locality.apply(out, GROUPS, Locality.parse("region1/zone1/sub1"), {}, policy)
    assert priorities(out) == {
        "10.0.0.1": 0,
        "10.0.0.2": 1,
        "10.0.0.3": 2,
        "10.0.0.4": 3,
        "10.0.0.5": 3,
    }


def test_priorities_have_no_gaps():
    """Envoy's priorities must run 0..n: a proxy in a region of its own gets the others at
    priority 0, and a missing zone level closes up."""
    groups = [GROUPS[0], GROUPS[3]]
    out = assignment(*groups)
    policy = ClusterPolicy(setting(), failover=True)
    locality.apply(out, groups, Locality.parse("region1/zone1/sub1"), {}, policy)
    assert priorities(out) == {"10.0.0.1": 0, "10.0.0.4": 1}


def test_failover_sends_the_proxys_region_to_its_to_region_before_the_others():
    out = assignment(*GROUPS)
    policy = ClusterPolicy(setting(failover=[{"from": "region1", "to": "region3"}]), True)
    locality.apply(out, GROUPS, Locality.parse("region1/zone1/sub1"), {}, policy)
    assert priorities(out)["10.0.0.5"] == 3  # the `to` region
    assert priorities(out)["10.0.0.4"] == 4  # any other region after it


def test_failover_names_only_the_region_it_is_from():
    out = assignment(*GROUPS)
    policy = ClusterPolicy(setting(failover=[{"from": "region2", "to": "region3"}]), True)
    locality.apply(out, GROUPS, Locality.parse("region1/zone1/sub1"), {}, policy)
    assert priorities(out)["10.0.0.4"] == priorities(out)["10.0.0.5"] == 3


def test_without_outlier_detection_there_is_no_failover():
    out = assignment(*GROUPS)
    locality.apply(out, GROUPS, Locality.parse("region1/zone1/sub1"), {},
                   ClusterPolicy(setting(), failover=False))  # fmt: skip
    assert set(priorities(out).values()) == {0}


def test_every_locality_is_weighted_by_its_endpoints():
    groups = [[endpoint("10.0.0.1", "r/z1"), endpoint("10.0.0.2", "r/z1")],
              [endpoint("10.0.0.3", "r/z2")]]  # fmt: skip
    out = assignment(*groups)
    locality.apply(out, groups, Locality(), {}, ClusterPolicy(setting(), failover=True))
    assert [g.load_balancing_weight.value for g in out.endpoints] == [2, 1]


def test_distribute_gives_each_locality_its_share_and_drops_the_unnamed():
    out = assignment(*GROUPS)
    rule = setting(distribute=[
        {"from": "region2/*", "to": {"region1/zone1/*": 80, "region1/zone2/*": 20}},
        {"from": "region1/zone1/*", "to": {"region1/zone1/*": 70, "region2/zone3/*": 30}},
    ])  # fmt: skip
    locality.apply(out, GROUPS, Locality.parse("region1/zone1/sub1"), {}, ClusterPolicy(rule, True))
    weights = {g.locality.sub_zone + g.locality.zone: g.load_balancing_weight.value
               for g in out.endpoints if g.lb_endpoints}  # fmt: skip
    # region1/zone1/* covers two subzones of one endpoint each: 70 shared, rounded up.
    assert weights == {"sub1zone1": 35, "sub2zone1": 35, "sub1zone3": 30}
    assert {g.locality.region for g in out.endpoints if not g.lb_endpoints} == {
        "region1",
        "region3",
    }
    assert set(priorities(out).values()) == {0}  # distribute, not failover


def test_distribute_from_another_locality_changes_nothing_but_weights():
    out = assignment(*GROUPS)
    rule = setting(distribute=[{"from": "region9/*", "to": {"region1/*": 100}}])
    locality.apply(out, GROUPS, Locality.parse("region1/zone1/sub1"), {}, ClusterPolicy(rule, True))
    assert all(g.lb_endpoints for g in out.endpoints)
    assert all(g.load_balancing_weight.value == 1 for g in out.endpoints)


def test_failover_priority_splits_localities_by_the_labels_a_proxy_shares():
    groups = [[endpoint("10.0.0.1", "r/z", version="v1", tier="a"),
               endpoint("10.0.0.2", "r/z", version="v1", tier="b"),
               endpoint("10.0.0.3", "r/z", version="v2", tier="a")]]  # fmt: skip
    out = assignment(*groups)
    policy = ClusterPolicy(setting(failoverPriority=["version", "tier"]), failover=True)
    locality.apply(out, groups, Locality.parse("r/z"), {"version": "v1", "tier": "a"}, policy)
    assert priorities(out) == {"10.0.0.1": 0, "10.0.0.2": 1, "10.0.0.3": 2}
    assert [g.load_balancing_weight.value for g in out.endpoints] == [1, 1, 1]


def test_failover_priority_reads_topology_labels_from_the_locality():
    groups = [[endpoint("10.0.0.1", "region1/zone1")], [endpoint("10.0.0.2", "region1/zone2")],
              [endpoint("10.0.0.3", "region2/zone3")]]  # fmt: skip
    out = assignment(*groups)
    labels = locality.with_topology_labels({}, "region1/zone1")
    policy = ClusterPolicy(
        setting(failoverPriority=[locality.REGION_LABEL, locality.ZONE_LABEL]), failover=True
    )
    locality.apply(out, groups, Locality.parse("region1/zone1"), labels, policy)
    assert priorities(out) == {"10.0.0.1": 0, "10.0.0.2": 1, "10.0.0.3": 2}


def test_failover_priority_with_a_value_compares_with_that_value():
    groups = [
        [endpoint("10.0.0.1", "r/z", version="v1"), endpoint("10.0.0.2", "r/z", version="v2")]
    ]
    out = assignment(*groups)
    policy = ClusterPolicy(setting(failoverPriority=["version=v2"]), failover=True)
    locality.apply(out, groups, Locality.parse("r/z"), {"version": "v1"}, policy)
    assert priorities(out) == {"10.0.0.2": 0, "10.0.0.1": 1}


def test_failover_priority_then_failover_keeps_the_label_order_first():
    groups = [[endpoint("10.0.0.1", "region1/z", version="v2"),
               endpoint("10.0.0.2", "region1/z", version="v1")],
              [endpoint("10.0.0.3", "region2/z", version="v1")]]  # fmt: skip
    out = assignment(*groups)
    rule = setting(failoverPriority=["version"], failover=[{"from": "region1", "to": "region2"}])
    locality.apply(
        out, groups, Locality.parse("region1/z"), {"version": "v1"}, ClusterPolicy(rule, True)
    )
    assert priorities(out) == {"10.0.0.2": 0, "10.0.0.3": 1, "10.0.0.1": 2}


def test_the_setting_is_the_rules_else_the_meshs_and_enabled_false_turns_it_off():
    mesh = config_pb2.MeshConfig()
    mesh.locality_lb_setting.enabled.value = True
    with_outlier = json_format.ParseDict({"outlierDetection": {"interval": "1s"}},
                                         dr_pb2.TrafficPolicy())  # fmt: skip
    assert locality.cluster_policy(mesh, None) is None  # nothing to do without outliers
    policy = locality.cluster_policy(mesh, with_outlier)
    assert policy is not None
    assert policy.failover
    assert not policy.weighted
    mesh.locality_lb_setting.enabled.value = False
    assert locality.cluster_policy(mesh, with_outlier) is None
    # A mesh config that does not say is Istio's default: enabled.
    assert locality.cluster_policy(config_pb2.MeshConfig(), with_outlier) is not None
    off = json_format.ParseDict(
        {"outlierDetection": {"interval": "1s"}, "loadBalancer": {"localityLbSetting": {
            "enabled": False}}}, dr_pb2.TrafficPolicy())  # fmt: skip
    assert locality.cluster_policy(config_pb2.MeshConfig(), off) is None
    distribute = json_format.ParseDict(
        {"loadBalancer": {"localityLbSetting": {"distribute": [
            {"from": "r/*", "to": {"r/z1/*": 80, "r/z2/*": 20}}]}}}, dr_pb2.TrafficPolicy())  # fmt: skip
    policy = locality.cluster_policy(config_pb2.MeshConfig(), distribute)
    assert policy is not None
    assert policy.weighted
    assert not policy.failover
