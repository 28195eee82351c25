"""The generator table dispatches by type URL and answers unknown types with nothing."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2

from pilot.xds.cache import Generate
from pilot.xds.generators import Generators
from pilot.xds.proxy import parse_node
from pilot.xds.testing import node
from pkg.xds import resources as res
from pkg.xds.resources import Resource

PROXY = parse_node(node())

# Conformance: a table is a server generator.
_check: Generate = Generators({})


def test_dispatches_by_type_url_with_proxy_and_names():
    seen = []

    def clusters(proxy, names):
        seen.append((proxy.pod, list(names)))
        return [Resource("a", cluster_pb2.Cluster(name="a"))]

    generators = Generators({res.CLUSTER: clusters})
    assert [r.name for r in generators(PROXY, res.CLUSTER, [])] == ["a"]
    assert seen == [("test", [])]
    assert generators.type_urls() == [res.CLUSTER]


def test_unknown_type_yields_no_resources():
    assert Generators({})(PROXY, res.SECRET, ["default"]) == []
