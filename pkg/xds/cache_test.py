"""The snapshot cache alone: snapshots by key, watchers, reference checks, pending names."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from pkg.xds import resources as res
from pkg.xds.cache import SnapshotCache, SnapshotError, StaticSnapshot
from pkg.xds.peer import Peer, StreamInfo
from pkg.xds.resources import Resource, Resources


def stream(key: str, conn_id: str = "c") -> StreamInfo[str]:
    return StreamInfo(conn_id, key, key, base_pb2.Node(id=key), Peer(), key)


def eds_cluster(name: str) -> Resource:
    return Resource(
        name,
        cluster_pb2.Cluster(
            name=name,
            type=cluster_pb2.Cluster.EDS,
            eds_cluster_config={"service_name": name},
        ),
    )


def snapshot(clusters: list[str], endpoints: list[str]) -> StaticSnapshot:
    return StaticSnapshot(
        {
            res.CLUSTER: Resources.of(res.CLUSTER, [eds_cluster(n) for n in clusters]),
            res.ENDPOINT: Resources.of(
                res.ENDPOINT,
                [
                    Resource(n, endpoint_pb2.ClusterLoadAssignment(cluster_name=n))
                    for n in endpoints
                ],
            ),
        }
    )


def test_watchers_of_a_key_get_its_snapshots_and_only_theirs():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    seen: dict[str, list[StaticSnapshot]] = {"a": [], "b": []}
    cancel_a = cache.watch(stream("a"), seen["a"].append)
    cache.watch(stream("b"), seen["b"].append)
    assert seen == {"a": [], "b": []}  # no snapshot yet: the streams wait
    first = snapshot(["x"], ["x"])
    cache.set_snapshot("a", first)
    assert seen == {"a": [first], "b": []}
    cancel_a()
    cache.set_snapshot("a", snapshot(["y"], ["y"]))
    assert seen["a"] == [first]
    # A late watcher gets the current snapshot at once.
    late: list[StaticSnapshot] = []
    cache.watch(stream("a", "c2"), late.append)
    assert [s.version(res.CLUSTER) for s in late] == [snapshot(["y"], ["y"]).version(res.CLUSTER)]


def test_the_snapshot_of_a_key_nobody_watches_is_dropped():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    cancel = cache.watch(stream("a"), lambda s: None)
    cache.set_snapshot("a", snapshot([], []))
    cancel()
    assert cache.snapshot("a") is None
    kept: SnapshotCache[StaticSnapshot] = SnapshotCache(keep=True)
    kept.watch(stream("a"), lambda s: None)()
    kept.set_snapshot("a", snapshot([], []))
    assert kept.snapshot("a") is not None


def test_a_snapshot_whose_clusters_lack_endpoints_is_refused():
    cache: SnapshotCache[StaticSnapshot] = SnapshotCache()
    seen: list[StaticSnapshot] = []
    cache.watch(stream("a"), seen.append)
    with pytest.raises(SnapshotError, match="CDS 'x' refers to EDS x"):
        cache.set_snapshot("a", snapshot(["x"], []))
    assert seen == []
    assert cache.snapshot("a") is None


def test_the_initial_factory_makes_a_first_snapshot():
    made = []

    def initial(info: StreamInfo[object]) -> StaticSnapshot:
        made.append(info.key)
        return snapshot([], [])

    cache = SnapshotCache(initial=initial)
    seen: list[StaticSnapshot] = []
    cache.watch(stream("a"), seen.append)
    cache.watch(stream("a", "c2"), seen.append)
    assert made == ["a"]
    assert len(seen) == 2


def test_static_snapshot_waits_for_pending_names_and_ignores_unknown_ones():
    secrets = Resources.of(res.ENDPOINT, [], pending=["default"])
    snap = StaticSnapshot({res.ENDPOINT: secrets})
    assert snap.resources(res.ENDPOINT, frozenset({"default"})) is None
    assert snap.resources(res.ENDPOINT, frozenset({"unknown"})) is None  # nothing to answer
    ready = StaticSnapshot(
        {
            res.ENDPOINT: Resources.of(
                res.ENDPOINT, [Resource("default", endpoint_pb2.ClusterLoadAssignment())]
            )
        }
    )
    found = ready.resources(res.ENDPOINT, frozenset({"default", "unknown"}))
    assert found is not None
    assert found.names == {"default"}
    # A type the snapshot does not hold is answered with nothing.
    listeners = ready.resources(res.LISTENER, None)
    assert listeners is not None
    assert len(listeners) == 0
