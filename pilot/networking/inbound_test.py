"""A captured sidecar's virtualInbound: a chain per port, passthrough, mTLS modes, filters."""

from __future__ import annotations

import dataclasses

from pilot.networking.outbound_test import CAPTURED, by_name, push, tcp_target
from pilot.networking.testing import generate_all

TCP_PORT = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: app-db, namespace: default}
spec:
  hosts: [app-db.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp-db, protocol: TCP}]
  workloadSelector: {labels: {app: app}}
"""
STRICT_8080 = """
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: app, namespace: default}
spec:
  selector: {matchLabels: {app: app}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls: {"8080": {mode: STRICT}}
"""
DENY = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-app, namespace: default}
spec:
  selector: {matchLabels: {app: app}}
  action: DENY
  rules: [{to: [{operation: {paths: [/admin]}}]}]
"""


def inbound(*extra: str, proxy=CAPTURED) -> dict:
    return by_name(generate_all(proxy, push(*extra))["LDS"])["virtualInbound"]


def test_virtual_inbound_restores_the_destination_and_takes_each_port_on_its_chain():
    listener = inbound(TCP_PORT)
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 15006}
    assert [f["name"] for f in listener["listener_filters"]] == [
        "envoy.filters.listener.original_dst"
    ]
    chains = by_name(listener["filter_chains"])
    assert list(chains) == ["virtualInbound-blackhole", "0.0.0.0_5432", "0.0.0.0_8080",
                            "virtualInbound"]  # fmt: skip
    assert chains["virtualInbound-blackhole"]["filter_chain_match"] == {"destination_port": 15006}
    http = chains["0.0.0.0_8080"]
    assert http["filter_chain_match"] == {"destination_port": 8080}
    routes = http["filters"][0]["typed_config"]["route_config"]
    assert routes["name"] == "inbound|8080||"
    assert routes["virtual_hosts"][0]["routes"][0]["route"]["cluster"] == "inbound|8080||"
    assert tcp_target(chains["0.0.0.0_5432"]) == "inbound|5432||"
    assert "filter_chain_match" not in chains["virtualInbound"]
    assert tcp_target(chains["virtualInbound"]) == "InboundPassthroughCluster"


def test_authorization_filters_guard_the_http_chains():
    chains = by_name(inbound(DENY)["filter_chains"])
    filters = [
        f["name"] for f in chains["0.0.0.0_8080"]["filters"][0]["typed_config"]["http_filters"]
    ]
    assert filters == ["envoy.filters.http.rbac", "envoy.filters.http.router"]


def test_each_port_takes_its_own_peer_authentication_mode():
    proxy = dataclasses.replace(CAPTURED, metadata={**CAPTURED.metadata, "SDS": "true"})
    listener = inbound(STRICT_8080, TCP_PORT, proxy=proxy)
    names = [f["name"] for f in listener["listener_filters"]]
    assert names == ["envoy.filters.listener.original_dst", "envoy.filters.listener.tls_inspector"]
    matches = [(c["name"], c.get("filter_chain_match")) for c in listener["filter_chains"]]
    assert matches == [
        ("virtualInbound-blackhole", {"destination_port": 15006}),
        # PERMISSIVE: TLS and plaintext told apart.
        ("0.0.0.0_5432", {"destination_port": 5432, "transport_protocol": "tls"}),
        ("0.0.0.0_5432", {"destination_port": 5432, "transport_protocol": "raw_buffer"}),
        # STRICT: mutual TLS only; a plaintext connection matches no chain.
        ("0.0.0.0_8080", {"destination_port": 8080, "transport_protocol": "tls"}),
        ("virtualInbound", {"transport_protocol": "tls"}),
        ("virtualInbound", {"transport_protocol": "raw_buffer"}),
    ]
    strict = listener["filter_chains"][3]
    assert "transport_socket" in strict


ALLOW_5432 = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: db-only, namespace: default}
spec:
  selector: {matchLabels: {app: app}}
  action: ALLOW
  rules: [{to: [{operation: {ports: ["5432"]}}]}]
"""


def test_tcp_and_passthrough_chains_authorize_before_their_tcp_proxy():
    chains = by_name(inbound(TCP_PORT, ALLOW_5432)["filter_chains"])
    for name in ("0.0.0.0_5432", "virtualInbound"):
        filters = chains[name]["filters"]
        assert [f["name"] for f in filters] == [
            "envoy.filters.network.rbac",
            "envoy.filters.network.tcp_proxy",
        ], name
        rules = filters[0]["typed_config"]["rules"]
        (rule,) = rules["policies"].values()
        assert rule["permissions"] == [{"destination_port": 5432}]
    # The HTTP chain authorizes per request, in its connection manager.
    http = chains["0.0.0.0_8080"]["filters"]
    assert [f["name"] for f in http] == ["envoy.filters.network.http_connection_manager"]
    assert [f["name"] for f in http[0]["typed_config"]["http_filters"]] == [
        "envoy.filters.http.rbac",
        "envoy.filters.http.router",
    ]
    # No policy, no filter; the blackhole chain never has one.
    plain = by_name(inbound(TCP_PORT)["filter_chains"])
    assert [f["name"] for f in plain["0.0.0.0_5432"]["filters"]] == [
        "envoy.filters.network.tcp_proxy"
    ]
    assert len(chains["virtualInbound-blackhole"]["filters"]) == 1
