"""EDS and CDS for locality load balancing, from WorkloadEntries with a `locality`, as
Pilot generates them: priorities per proxy locality, shared by proxies at one locality, and
the default mesh left on the shared endpoint table."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from pilot.model.push_context import MeshOptions
from pilot.networking import generator, locality_endpoints
from pilot.networking.cache import GenerationCache
from pilot.networking.testing import FakeProxy, push_of
from pkg.config import loader
from pkg.config.mesh import default_mesh_config, parse_mesh_config

CLUSTER = "outbound|8000||httpbin.default.svc.cluster.local"
V1 = "outbound|8000|v1|httpbin.default.svc.cluster.local"

SERVICE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 8000, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: httpbin}}
"""

FAILOVER = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin.default.svc.cluster.local
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m}
    %s
  subsets: [{name: v1, labels: {version: v1}}]
"""

DISTRIBUTE = """loadBalancer:
      localityLbSetting:
        distribute:
        - from: region1/zone1/*
          to: {"region1/zone1/*": 80, "region1/zone2/*": 20}"""

# (name, address, locality, version)
WORKLOADS = [
    ("a", "10.60.0.1", "region1/zone1/sub1", "v1"),
    ("b", "10.60.0.2", "region1/zone2/sub1", "v1"),
    ("c", "10.60.0.3", "region2/zone3/sub1", "v2"),
]


def configs(rule: str = "", workloads: list[tuple[str, str, str, str]] = WORKLOADS) -> dict:
    resources = loader.load_text(SERVICE) + (loader.load_text(rule) if rule else [])
    for name, address, place, version in workloads:
        resources += loader.load_text(f"""
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}, namespace: default}}
spec:
  address: {address}
  locality: {place}
  labels: {{app: httpbin, version: {version}}}
""")
    out: dict[str, list] = {}
    for resource in resources:
        out.setdefault(resource.schema.kind, []).append(resource)
    return out


def default_mesh() -> MeshOptions:
    return MeshOptions(mesh_config=default_mesh_config())


def proxy(place: str, ip: str = "10.60.9.9") -> FakeProxy:
    return FakeProxy("sidecar", ip, "default", {"app": "sleep"}, locality=place)


def eds(p: FakeProxy, push: Any, names: tuple[str, ...] = (CLUSTER,)) -> dict[str, dict]:
    return {
        name: json_format.MessageToDict(message, preserving_proto_field_name=True)
        for name, message in generator.build_endpoints(p, push, names)
    }


def by_priority(assignment: dict) -> dict[str, int]:
    return {
        lb["endpoint"]["address"]["socket_address"]["address"]: group.get("priority", 0)
        for group in assignment["endpoints"]
        for lb in group.get("lb_endpoints", [])
    }


def test_endpoints_are_grouped_by_the_workload_entries_locality():
    push = push_of(configs(), default_mesh())
    assignment = eds(proxy("region1/zone1/sub1"), push)[CLUSTER]
    assert [g["locality"] for g in assignment["endpoints"]] == [
        {"region": "region1", "zone": "zone1", "sub_zone": "sub1"},
        {"region": "region1", "zone": "zone2", "sub_zone": "sub1"},
        {"region": "region2", "zone": "zone3", "sub_zone": "sub1"},
    ]
    # No outlier detection: locality LB does not apply, every proxy gets the shared table.
    assert set(by_priority(assignment).values()) == {0}
    assert not locality_endpoints.of_push(push)


def test_with_outlier_detection_each_proxy_gets_its_own_localitys_priorities():
    push = push_of(configs(FAILOVER % ""), default_mesh())
    assert by_priority(eds(proxy("region1/zone1/sub1"), push)[CLUSTER]) == {
        "10.60.0.1": 0,
        "10.60.0.2": 1,
        "10.60.0.3": 2,
    }
    assert by_priority(eds(proxy("region2/zone3/sub1"), push)[CLUSTER]) == {
        "10.60.0.3": 0,
        "10.60.0.1": 1,
        "10.60.0.2": 1,
    }
    # The subset's endpoints too (a and b; c is v2).
    assert by_priority(eds(proxy("region1/zone2/sub1"), push, (V1,))[V1]) == {
        "10.60.0.2": 0,
        "10.60.0.1": 1,
    }


def test_the_registrys_locality_of_the_proxy_wins_over_its_nodes():
    """Istio's setTopologyLabels: the proxy's workload in the registry first."""
    push = push_of(configs(FAILOVER % ""), default_mesh())
    at_b = proxy("region2/zone3/sub1", ip="10.60.0.2")  # WorkloadEntry b: region1/zone2
    assert by_priority(eds(at_b, push)[CLUSTER])["10.60.0.2"] == 0


def test_proxies_at_one_locality_share_one_answer():
    push = push_of(configs(FAILOVER % ""), default_mesh())
    first = generator.build_endpoints(proxy("region1/zone1/sub1", "10.60.9.1"), push, [CLUSTER])
    second = generator.build_endpoints(proxy("region1/zone1/sub1", "10.60.9.2"), push, [CLUSTER])
    elsewhere = generator.build_endpoints(proxy("region2/zone3/sub1"), push, [CLUSTER])
    assert first is second
    assert first != elsewhere


def test_other_clusters_stay_on_the_shared_table():
    rules = configs(FAILOVER % "")
    push = push_of(rules, default_mesh())
    local = locality_endpoints.of_push(push).policies
    assert set(local) == {CLUSTER, V1}
    assert "outbound|8000|v2|httpbin.default.svc.cluster.local" not in local


def test_a_single_locality_is_the_same_from_everywhere_and_stays_shared():
    one = [(n, a, "region1/zone1/sub1", v) for n, a, _, v in WORKLOADS]
    push = push_of(configs(FAILOVER % "", one), default_mesh())
    assert not locality_endpoints.of_push(push)


def test_mesh_config_can_turn_locality_lb_off():
    mesh = MeshOptions(mesh_config=parse_mesh_config("localityLbSetting: {enabled: false}"))
    push = push_of(configs(FAILOVER % ""), mesh)
    assert not locality_endpoints.of_push(push)
    assert set(by_priority(eds(proxy("region1/zone1/sub1"), push)[CLUSTER]).values()) == {0}


def test_distribute_weighs_localities_and_the_cluster_says_so():
    push = push_of(configs(FAILOVER % DISTRIBUTE), default_mesh())
    assignment = eds(proxy("region1/zone1/sub1"), push)[CLUSTER]
    weights = {
        g["locality"]["zone"]: g["load_balancing_weight"]
        for g in assignment["endpoints"]
        if g.get("lb_endpoints")
    }
    assert weights == {"zone1": 80, "zone2": 20}
    clusters = {
        name: json_format.MessageToDict(message, preserving_proto_field_name=True)
        for name, message in generator.build_clusters(proxy("region1/zone1/sub1"), push, [])
    }
    assert clusters[CLUSTER]["common_lb_config"]["locality_weighted_lb_config"] == {}
    # From elsewhere the rule does not apply: every locality, weighted by its endpoints.
    assignment = eds(proxy("region2/zone3/sub1"), push)[CLUSTER]
    assert [g["load_balancing_weight"] for g in assignment["endpoints"]] == [1, 1, 1]


def test_failover_without_a_failover_list_leaves_locality_weights_off():
    """Istio sets locality_weighted_lb_config only for explicit failover or distribute."""
    push = push_of(configs(FAILOVER % ""), default_mesh())
    clusters = {
        name: json_format.MessageToDict(message, preserving_proto_field_name=True)
        for name, message in generator.build_clusters(proxy("region1/zone1/sub1"), push, [])
    }
    assert "locality_weighted_lb_config" not in clusters[CLUSTER]["common_lb_config"]


def test_an_endpoint_push_keeps_the_unchanged_localities_assignments():
    cache = GenerationCache(verify=True)
    rules = configs(FAILOVER % "")
    first = push_of(rules, default_mesh(), cache=cache)
    before = generator.build_endpoints(proxy("region1/zone1/sub1"), first, [CLUSTER])
    cache.next_push()
    again = push_of(rules, default_mesh(), cache=cache)
    after = generator.build_endpoints(proxy("region1/zone1/sub1"), again, [CLUSTER])
    assert after.get(CLUSTER) is before.get(CLUSTER)


def test_a_service_entrys_inline_endpoints_carry_their_locality():
    entry = loader.load_text("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-db, namespace: default}
spec:
  hosts: [db.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints:
  - {address: 192.0.2.1, locality: us-east1/us-east1-b}
  - {address: 192.0.2.2, locality: eu-west1/eu-west1-a}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: external-db, namespace: default}
spec:
  host: db.example.com
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}}
""")
    out: dict[str, list] = {}
    for resource in entry:
        out.setdefault(resource.schema.kind, []).append(resource)
    push = push_of(out, default_mesh())
    name = "outbound|5432||db.example.com"
    assert by_priority(eds(proxy("eu-west1/eu-west1-a/"), push, (name,))[name]) == {
        "192.0.2.2": 0,
        "192.0.2.1": 1,
    }


def test_an_endpoint_push_says_which_locality_assignments_changed():
    cache = GenerationCache()
    first = push_of(configs(FAILOVER % ""), default_mesh(), cache=cache)
    names = frozenset({CLUSTER, V1})
    before = generator.build_endpoints(proxy("region1/zone1/sub1"), first, names)
    cache.next_push()
    # WorkloadEntry c (v2) moves: the plain cluster changes, the v1 subset does not.
    moved = [(n, a if n != "c" else "10.60.0.33", p, v) for n, a, p, v in WORKLOADS]
    second = push_of(configs(FAILOVER % "", moved), default_mesh(), cache=cache)
    after = generator.build_endpoints(proxy("region1/zone1/sub1"), second, names)
    assert after.changed_since(before) == {CLUSTER}
