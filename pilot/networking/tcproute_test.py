"""VirtualService tcp and tls routes on a captured sidecar: weighted tcp_proxy, SNI chains."""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from pilot.networking import generator
from pilot.networking.cache import GenerationCache
from pilot.networking.outbound_test import CAPTURED, MESH, by_name, push, tcp_target
from pilot.networking.tcproute import tcp_proxy
from pilot.networking.testing import generate_all, push_of
from pkg.config import loader

SUBSETS = """
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: tcp-echo, namespace: default}
spec:
  host: tcp-echo
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""


def shift(v1: int, v2: int, port: int = 9000) -> str:
    return f"""
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {{name: tcp-echo, namespace: default}}
spec:
  hosts: [tcp-echo]
  tcp:
  - match: [{{port: {port}}}]
    route:
    - {{destination: {{host: tcp-echo, port: {{number: 9000}}, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: tcp-echo, port: {{number: 9000}}, subset: v2}}, weight: {v2}}}
"""


V1 = "outbound|9000|v1|tcp-echo.default.svc.cluster.local"
V2 = "outbound|9000|v2|tcp-echo.default.svc.cluster.local"


def echo_chains(*extra: str) -> list:
    listeners = by_name(generate_all(CAPTURED, push(SUBSETS, *extra))["LDS"])
    return listeners["10.96.0.20_9000"]["filter_chains"]


def test_a_weighted_tcp_route_becomes_weighted_clusters():
    (chain,) = echo_chains(shift(80, 20))
    assert tcp_target(chain) == [(V1, 80), (V2, 20)]


def test_a_destination_of_weight_zero_gets_no_connections():
    (chain,) = echo_chains(shift(100, 0))
    assert tcp_target(chain) == V1


def test_a_tcp_route_for_another_port_leaves_the_default():
    (chain,) = echo_chains(shift(80, 20, port=9999))
    assert tcp_target(chain) == "outbound|9000||tcp-echo.default.svc.cluster.local"


def test_tls_routes_match_sni_hosts_on_a_tls_port():
    entry = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: tls-ext, namespace: default}
spec:
  hosts: ["*.example.com"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: b-ext, namespace: default}
spec:
  hosts: [b.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: tls-ext, namespace: default}
spec:
  hosts: ["*.example.com"]
  tls:
  - match: [{port: 443, sniHosts: [a.example.com]}]
    route: [{destination: {host: b.example.com, port: {number: 443}}}]
"""
    listener = by_name(generate_all(CAPTURED, push(entry))["LDS"])["0.0.0.0_443"]
    assert [f["name"] for f in listener["listener_filters"]] == [
        "envoy.filters.listener.tls_inspector"
    ]
    found = [
        (tuple(c.get("filter_chain_match", {}).get("server_names", ())), tcp_target(c))
        for c in listener["filter_chains"]
    ]
    assert len({sni for sni, _ in found}) == len(found)  # Envoy refuses one match twice
    assert dict(found) == {
        # The route's SNI host to the route's destination, each host by its own name.
        ("a.example.com",): "outbound|443||b.example.com",
        ("b.example.com",): "outbound|443||b.example.com",
        ("*.example.com",): "outbound|443||*.example.com",
        (): "PassthroughCluster",  # SNI of no registered host: the outbound policy's
    }


def test_tcp_proxy_of_one_cluster_or_many():
    assert tcp_proxy([("a", 100)])["typed_config"]["cluster"] == "a"
    weighted = tcp_proxy([("a", 70), ("b", 30)])["typed_config"]["weighted_clusters"]
    assert weighted == {"clusters": [{"name": "a", "weight": 70}, {"name": "b", "weight": 30}]}


def test_outbound_listeners_are_kept_across_pushes_until_a_route_changes():
    cache = GenerationCache(verify=True)  # verify: a kept piece equals a fresh build

    def outbound_of(*extra: str) -> Any:
        cache.next_push()
        configs: dict[str, list[Any]] = {}
        text = MESH + "".join(f"---\n{e}" for e in (SUBSETS, *extra))
        for resource in loader.load_text(text, source="test"):
            configs.setdefault(resource.schema.kind, []).append(resource)
        listeners = dict(
            generator.generate(CAPTURED, generator.LISTENER, [], push_of(configs, cache=cache))
        )
        return listeners["10.96.0.20_9000"]

    plain = outbound_of()
    assert outbound_of() is plain  # nothing changed: the same listener, not rebuilt
    shifted = outbound_of(shift(80, 20))
    assert shifted is not plain
    assert [w.weight for w in _weighted(shifted)] == [80, 20]
    assert outbound_of(shift(80, 20)) is shifted


def _weighted(listener: Any) -> Any:
    proxy = tcp_proxy_pb2.TcpProxy()
    listener.filter_chains[0].filters[0].typed_config.Unpack(proxy)
    return proxy.weighted_clusters.clusters
