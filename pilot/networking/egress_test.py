"""Egress from a captured sidecar: ServiceEntry hosts outside the mesh, by HTTP Host, by TLS
SNI, resolved by DNS (STRICT_DNS, LOGICAL_DNS), STATIC (EDS) or not at all (ORIGINAL_DST)."""

from __future__ import annotations

from pilot.networking.outbound_test import CAPTURED, by_name, push, tcp_target
from pilot.networking.testing import generate_all

EXTERNAL = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.org]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: mirrors, namespace: default}
spec:
  hosts: [mirrors.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: eu.mirrors.example.com}, {address: us.mirrors.example.com}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: legacy, namespace: default}
spec:
  hosts: [legacy.example.com]
  location: MESH_EXTERNAL
  resolution: DNS_ROUND_ROBIN
  ports: [{number: 8443, name: tls, protocol: TLS}]
  endpoints: [{address: a.legacy.example.com}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  addresses: [192.0.2.10]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 192.0.2.10}]
"""


def config(mesh: str = ""):
    return generate_all(CAPTURED, push(EXTERNAL, mesh=mesh))


def socket_addresses(cluster: dict) -> list[tuple[str, int]]:
    return [
        (e["endpoint"]["address"]["socket_address"]["address"],
         e["endpoint"]["address"]["socket_address"]["port_value"])
        for group in cluster["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
    ]  # fmt: skip


def test_dns_resolution_becomes_strict_dns_and_dns_round_robin_logical_dns():
    clusters = by_name(config()["CDS"])
    httpbin = clusters["outbound|80||httpbin.org"]
    assert httpbin["type"] == "STRICT_DNS"
    assert socket_addresses(httpbin) == [("httpbin.org", 80)]  # no endpoints: the host
    mirrors = clusters["outbound|443||mirrors.example.com"]
    assert mirrors["type"] == "STRICT_DNS"
    assert socket_addresses(mirrors) == [
        ("eu.mirrors.example.com", 443),
        ("us.mirrors.example.com", 443),
    ]
    legacy = clusters["outbound|8443||legacy.example.com"]
    assert legacy["type"] == "LOGICAL_DNS"
    assert socket_addresses(legacy) == [("a.legacy.example.com", 8443)]
    assert clusters["outbound|5432||db.example.com"]["type"] == "EDS"


def test_external_http_hosts_are_in_the_ports_route_table():
    table = by_name(config()["RDS"])["80"]
    httpbin, catch_all = table["virtual_hosts"]
    assert httpbin["domains"] == ["httpbin.org", "httpbin.org:80"]
    assert httpbin["routes"][0]["route"]["cluster"] == "outbound|80||httpbin.org"
    assert catch_all["name"] == "allow_any"


def test_external_tls_hosts_are_told_apart_by_sni():
    listeners = by_name(config(mesh="outboundTrafficPolicy: {mode: REGISTRY_ONLY}")["LDS"])
    chains = [
        (c.get("filter_chain_match", {}).get("server_names"), tcp_target(c))
        for c in listeners["0.0.0.0_443"]["filter_chains"]
    ]
    assert chains == [
        (["mirrors.example.com"], "outbound|443||mirrors.example.com"),
        (["httpbin.org"], "outbound|443||httpbin.org"),
        (None, "BlackHoleCluster"),  # REGISTRY_ONLY: any other name goes nowhere
    ]
    db = listeners["192.0.2.10_5432"]
    assert tcp_target(db["filter_chains"][0]) == "outbound|5432||db.example.com"


def test_a_tcp_route_on_an_http_port_is_ignored_as_istio_ignores_it():
    # Istio accepts it (validation cannot know the service's protocol) and builds an HTTP
    # port's listener from HTTP routes alone: the tcp route changes nothing there.
    tcp_on_http = """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  tcp: [{match: [{port: 9080}], route: [{destination: {host: tcp-echo, port: {number: 9000}}}]}]
"""
    plain = generate_all(CAPTURED, push())
    routed = generate_all(CAPTURED, push(tcp_on_http))
    assert routed["LDS"] == plain["LDS"]
    reviews = by_name(routed["RDS"])["9080"]["virtual_hosts"][0]
    assert (
        reviews["routes"][0]["route"]["cluster"]
        == "outbound|9080||reviews.default.svc.cluster.local"
    )
