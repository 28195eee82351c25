"""Workload locality from pod and node labels, as Istio reads it."""

from __future__ import annotations

from pkg.config import locality


def test_the_pod_label_spells_the_locality_with_dots():
    assert (
        locality.from_pod_labels({"istio-locality": "region1.zone1.sub1"}) == "region1/zone1/sub1"
    )
    assert locality.from_pod_labels({"istio-locality": "region1.zone1"}) == "region1/zone1"
    assert locality.from_pod_labels({"app": "x"}) == ""


def test_the_topology_label_comes_before_the_older_one():
    labels = {"topology.istio.io/locality": "r2.z2", "istio-locality": "r1.z1"}
    assert locality.from_pod_labels(labels) == "r2/z2"


def test_a_value_with_slashes_is_taken_as_it_is():
    assert locality.from_pod_labels({"istio-locality": "r.1/z.1"}) == "r.1/z.1"


def test_a_node_gives_region_zone_and_subzone():
    node = {
        "topology.kubernetes.io/region": "us-east1",
        "topology.kubernetes.io/zone": "us-east1-b",
        "topology.istio.io/subzone": "rack7",
    }
    assert locality.from_node_labels(node) == "us-east1/us-east1-b/rack7"
    assert locality.from_node_labels({"failure-domain.beta.kubernetes.io/region": "eu"}) == "eu//"
    assert locality.from_node_labels({}) == ""


def test_the_pods_label_wins_over_its_node():
    node = {"topology.kubernetes.io/region": "r9", "topology.kubernetes.io/zone": "z9"}
    assert locality.of_pod({"istio-locality": "r1.z1"}, node) == "r1/z1"
    assert locality.of_pod({}, node) == "r9/z9/"
