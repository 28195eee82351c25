"""Resources: encoded once, equal to protobuf's own encoding, versioned by content."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from pkg.xds import resources as res
from pkg.xds.resources import Resource, ResourceError, Resources
from pkg.xds.response import Response


def cluster(name: str, **fields) -> Resource:
    return Resource(name, cluster_pb2.Cluster(name=name, **fields))


def assignment(name: str, weight: int = 0) -> Resource:
    message = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    if weight:
        message.endpoints.add().load_balancing_weight.value = weight
    return Resource(name, message)


def test_a_response_decodes_as_the_one_protobuf_would_build():
    clusters = Resources.of(res.CLUSTER, [cluster("b", alt_stat_name="x"), cluster("a")])
    response = Response(res.CLUSTER, clusters.version, "n-1", clusters)
    expected = discovery_pb2.DiscoveryResponse(
        version_info=clusters.version, type_url=res.CLUSTER, nonce="n-1"
    )
    for _, message in sorted([cluster("b", alt_stat_name="x"), cluster("a")]):
        packed = any_pb2.Any()
        packed.Pack(message)
        expected.resources.append(packed)
    assert response.to_proto() == expected
    assert [r.name for r in clusters] == ["a", "b"]


def test_version_depends_on_names_and_content_only():
    a = Resources.of(res.CLUSTER, [cluster("a"), cluster("b")])
    assert a.version == Resources.of(res.CLUSTER, [cluster("b"), cluster("a")]).version
    assert a.version == res.version_of([cluster("a"), cluster("b")])
    assert a.version != Resources.of(res.CLUSTER, [cluster("a")]).version
    changed = Resources.of(res.CLUSTER, [cluster("a", alt_stat_name="x"), cluster("b")])
    assert changed.version != a.version


def test_wrong_types_and_duplicates_are_refused_with_the_name():
    with pytest.raises(ResourceError, match=r"'l'.*Listener"):
        Resources.of(res.CLUSTER, [Resource("l", listener_pb2.Listener(name="l"))])
    with pytest.raises(ResourceError, match="'a': returned twice"):
        Resources.of(res.CLUSTER, [cluster("a"), cluster("a")])


def test_a_union_shares_its_parts_encoding():
    shared = Resources.of(res.CLUSTER, [cluster(f"s{i}") for i in range(3)])
    own = Resources.of(res.CLUSTER, [cluster("own")])
    union = Resources.union(res.CLUSTER, [shared, own])
    assert union.names == shared.names | {"own"}
    assert union.wire == shared.wire + own.wire
    assert union.get("s1") is shared.get("s1")
    assert [r.name for r in union] == ["own", "s0", "s1", "s2"]
    assert Resources.union(res.CLUSTER, [shared]) is shared
    with pytest.raises(ResourceError, match="'s0': returned twice"):
        Resources.union(res.CLUSTER, [shared, Resources.of(res.CLUSTER, [cluster("s0")])])


def test_select_narrows_to_a_subscription():
    every = Resources.of(res.ENDPOINT, [assignment(n) for n in "abc"])
    assert every.select(None) is every
    assert every.select(frozenset("abcd")) is every  # asks for more: all it has
    narrowed = every.select(frozenset("ax"))
    assert [r.name for r in narrowed] == ["a"]
    assert narrowed.version == res.version_of([assignment("a")])
    # Most of a large set: a view, its version derived from the set's and what it leaves out.
    large = Resources.of(res.ENDPOINT, [assignment(f"c{i}") for i in range(10)])
    view = large.select(large.names - {"c3"})
    assert len(view) == 9
    assert view.get("c3") is None
    assert view.get("c4") is large.get("c4")
    assert "c3" not in view.names
    assert [r.name for r in view][:3] == ["c0", "c1", "c2"]
    assert view.version == large.select(large.names - {"c3"}).version != large.version
    assert view.wire == b"".join(large.get(n).wire for n in sorted(view.names))  # type: ignore[union-attr]
    changed = large.replace([assignment("c3", weight=9)])
    assert changed.select(view.names).changed_since(view) == frozenset()  # only c3 moved
    moved = large.replace([assignment("c4", weight=9)])
    assert moved.select(view.names).changed_since(view) == {"c4"}


def test_replace_remembers_what_changed_for_partial_pushes():
    first = Resources.of(res.ENDPOINT, [assignment(n) for n in "abcd"])
    second = first.replace([assignment("b", weight=2)])
    third = second.replace([assignment("c", weight=3)])
    assert third.changed_since(first) == {"b", "c"}
    assert third.changed_since(second) == {"c"}
    assert third.changed_since(third) == frozenset()
    assert third.get("a") is first.get("a")  # unchanged resources are not re-encoded
    # A selection keeps its set's history.
    names = frozenset("bd")
    assert third.select(names).changed_since(first.select(names)) == {"b"}
    # Unrelated sets: no answer, send everything.
    assert third.changed_since(Resources.of(res.ENDPOINT, [assignment("a")])) is None


def test_a_partial_response_carries_only_the_changed_names():
    first = Resources.of(res.ENDPOINT, [assignment(n) for n in "abc"])
    second = first.replace([assignment("b", weight=5)])
    response = Response(res.ENDPOINT, second.version, "n", second, only=frozenset({"b"}))
    (only,) = response.to_proto().resources
    decoded = endpoint_pb2.ClusterLoadAssignment()
    only.Unpack(decoded)
    assert decoded.cluster_name == "b"
    assert response.to_proto().version_info == second.version
    assert [e.name for e in response.sent()] == ["b"]


def _cds(**lb: int) -> Resources:
    return Resources.of(
        res.CLUSTER, [Resource(n, cluster_pb2.Cluster(name=n, lb_policy=p)) for n, p in lb.items()]
    )


def test_differing_compares_content_when_the_lineage_cannot_tell():
    before = _cds(a=0, b=0, c=0)
    after = _cds(a=0, b=2, d=0)  # rebuilt: b changed, c gone, d new
    assert after.changed_since(before) is None
    assert after.differing(before) == {"b"}
    assert after.differing(after) == frozenset()


def test_differing_of_unions_compares_each_shared_part_once():
    shared_before, shared_after = _cds(a=0, b=0), _cds(a=2, b=0)
    own_before, own_after = _cds(x=0), _cds(x=0, y=0)
    one = Resources.union(res.CLUSTER, [shared_after, own_after])
    other = Resources.union(res.CLUSTER, [shared_after, _cds(z=2)])
    assert one.differing(Resources.union(res.CLUSTER, [shared_before, own_before])) == {"a"}
    assert other.differing(Resources.union(res.CLUSTER, [shared_before, _cds(z=0)])) == {"a", "z"}
    # The shared part remembers its answer for the next proxy's union.
    assert shared_after._differing == (shared_before.version, frozenset({"a"}))


def test_differing_finds_a_cluster_that_moved_between_parts():
    before = Resources.union(res.CLUSTER, [_cds(a=0), _cds(b=0)])
    after = Resources.union(res.CLUSTER, [_cds(b=2), _cds(a=0)])
    assert after.differing(before) == {"b"}


def test_a_union_tells_what_changed_part_by_part_when_its_parts_keep_their_names():
    table = Resources.of(res.ENDPOINT, [assignment(n) for n in "abcd"])
    own = Resources.of(res.ENDPOINT, [assignment("x", weight=1)])
    before = Resources.union(res.ENDPOINT, [table.select(frozenset("abc")), own])
    moved = table.replace([assignment("b", weight=2)])
    after = Resources.union(res.ENDPOINT, [moved.select(frozenset("abc")), own])
    assert after.changed_since(before) == {"b"}
    # Its own part rebuilt with other content: its history is unknown, send everything.
    rebuilt = Resources.of(res.ENDPOINT, [assignment("x", weight=3)])
    assert (
        Resources.union(res.ENDPOINT, [moved.select(frozenset("abc")), rebuilt]).changed_since(
            before
        )
        is None
    )
    # A name moved from the shared part to its own: no part's history shows it.
    own_more = Resources.of(res.ENDPOINT, [assignment("c", weight=9), assignment("x", weight=1)])
    shifted = Resources.union(res.ENDPOINT, [moved.select(frozenset("ab")), own_more])
    assert shifted.changed_since(before) is None
