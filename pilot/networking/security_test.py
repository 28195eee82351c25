"""mTLS and authorization in generated config: what each side presents, accepts and allows."""

import dataclasses

from google.protobuf import json_format

from pilot.networking import generator
from pilot.networking.testing import FakeProxy, bookinfo_push, sidecar, workload_entries
from pkg.config import loader

WITH_SDS = {"SDS": "true"}


def _sds(pod):
    return dataclasses.replace(sidecar(pod), metadata=WITH_SDS)


def _dicts(resources):
    return {n: json_format.MessageToDict(m, preserving_proto_field_name=True) for n, m in resources}


def _load(text):
    return loader.load_text(text, source="test")


def _mtls_push(*extra, samples=("destination-rule-all",)):
    # Bookinfo pods registered by agents that have a node agent (certificates).
    entries = []
    for entry in workload_entries():
        data = entry.to_dict()
        data["spec"]["labels"]["security.istio.io/tlsMode"] = "istio"
        entries.append(loader.load_object(data, source="test"))
    return bookinfo_push(*samples, extra=[*entries, *extra])


def _inbound(proxy, push):
    return _dicts(generator.build_listeners(proxy, push, []))["virtualInbound"]


MESH_STRICT = """
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"""


def test_without_certificates_a_proxy_gets_no_tls():
    push = _mtls_push(*_load(MESH_STRICT))
    listener = _inbound(sidecar("reviews-v1"), push)
    assert [c.get("transport_socket") for c in listener["filter_chains"]] == [None]
    cluster = _dicts(generator.build_clusters(sidecar("productpage-v1"), push, []))
    assert (
        "transport_socket_matches"
        not in cluster["outbound|9080||reviews.default.svc.cluster.local"]
    )


def test_permissive_by_default_takes_both_on_one_port():
    listener = _inbound(_sds("reviews-v1"), _mtls_push())
    assert listener["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    chains = {c["filter_chain_match"]["transport_protocol"]: c for c in listener["filter_chains"]}
    assert set(chains) == {"tls", "raw_buffer"}
    tls = chains["tls"]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    secrets = tls["common_tls_context"]["tls_certificate_sds_secret_configs"]
    assert secrets[0]["name"] == "default"
    assert (
        secrets[0]["sds_config"]["api_config_source"]["grpc_services"][0]["envoy_grpc"][
            "cluster_name"
        ]
        == "sds-grpc"
    )
    hcm = chains["tls"]["filters"][0]["typed_config"]
    assert hcm["forward_client_cert_details"] == "SANITIZE_SET"


def test_strict_mesh_wide_namespace_and_workload_precedence():
    namespace_permissive = """
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: PERMISSIVE}}
"""
    ratings_disabled = """
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: ratings, namespace: default}
spec: {selector: {matchLabels: {app: ratings}}, mtls: {mode: DISABLE}}
"""
    strict = _mtls_push(*_load(MESH_STRICT))
    assert "filter_chain_match" not in _inbound(_sds("reviews-v1"), strict)["filter_chains"][0]
    assert _inbound(_sds("reviews-v1"), strict)["filter_chains"][0]["transport_socket"]
    layered = _mtls_push(
        *_load(MESH_STRICT), *_load(namespace_permissive), *_load(ratings_disabled)
    )
    assert len(_inbound(_sds("reviews-v1"), layered)["filter_chains"]) == 2  # namespace: PERMISSIVE
    ratings = _inbound(_sds("ratings-v1"), layered)["filter_chains"]
    assert len(ratings) == 1
    assert "transport_socket" not in ratings[0]  # workload: DISABLE
    # Auto mTLS: callers send ratings plaintext, since it does not accept mTLS.
    endpoints = _dicts(
        generator.build_endpoints(
            _sds("reviews-v2"), layered, ["outbound|9080||ratings.default.svc.cluster.local"]
        )
    )
    (lb,) = endpoints["outbound|9080||ratings.default.svc.cluster.local"]["endpoints"][0][
        "lb_endpoints"
    ]
    assert "envoy.transport_socket_match" not in lb["metadata"]["filter_metadata"]


def test_auto_mtls_to_sidecars_with_certificates_and_san_checks():
    push = _mtls_push()
    cluster = _dicts(generator.build_clusters(_sds("productpage-v1"), push, []))[
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    ]
    tls_match, plain = cluster["transport_socket_matches"]
    assert tls_match["match"] == {"tlsMode": "istio"}
    assert plain["match"] == {}
    context = tls_match["transport_socket"]["typed_config"]
    assert context["sni"] == "outbound_.9080_.v2_.reviews.default.svc.cluster.local"
    sans = context["common_tls_context"]["combined_validation_context"][
        "default_validation_context"
    ]
    assert sans["match_typed_subject_alt_names"] == [
        {
            "san_type": "URI",
            "matcher": {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"},
        }
    ]
    endpoints = _dicts(
        generator.build_endpoints(
            _sds("productpage-v1"), push, ["outbound|9080|v2|reviews.default.svc.cluster.local"]
        )
    )
    (lb,) = endpoints["outbound|9080|v2|reviews.default.svc.cluster.local"]["endpoints"][0][
        "lb_endpoints"
    ]
    assert lb["metadata"]["filter_metadata"]["envoy.transport_socket_match"] == {"tlsMode": "istio"}


def test_destination_rule_istio_mutual_always_originates_mtls():
    push = _mtls_push(samples=("destination-rule-all-mtls",))
    cluster = _dicts(generator.build_clusters(_sds("productpage-v1"), push, []))[
        "outbound|9080|v1|reviews.default.svc.cluster.local"
    ]
    assert cluster["transport_socket"]["name"] == "envoy.transport_sockets.tls"
    assert "transport_socket_matches" not in cluster


def test_productpage_viewer_policy_becomes_an_rbac_allow_filter():
    policy = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/productpage", "/static/*", "/api/v1/products*"]
"""
    push = _mtls_push(*_load(policy))
    listener = _inbound(_sds("productpage-v1"), push)
    filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.rbac", "envoy.filters.http.router"]
    rules = filters[0]["typed_config"]["rules"]
    assert rules.get("action", "ALLOW") == "ALLOW"  # ALLOW is the proto default
    (rule,) = rules["policies"].values()
    principal = rule["principals"][0]["authenticated"]["principal_name"]
    assert principal == {
        "exact": "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
    }
    permission = rule["permissions"][0]["and_rules"]["rules"]
    assert permission[0] == {"header": {"name": ":method", "string_match": {"exact": "GET"}}}
    paths = permission[1]["or_rules"]["rules"]
    assert {"url_path": {"path": {"prefix": "/static/"}}} in paths
    # Other workloads are not covered by it.
    other = _inbound(_sds("reviews-v1"), push)["filter_chains"][0]["filters"][0]["typed_config"][
        "http_filters"
    ]
    assert [f["name"] for f in other] == ["envoy.filters.http.router"]


def test_deny_policy_comes_before_allow():
    policies = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-v3, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules:
  - when:
    - key: "request.headers[x-test]"
      values: ["blocked"]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: allow-namespace, namespace: default}
spec:
  action: ALLOW
  rules: [{from: [{source: {namespaces: [default]}}]}]
"""
    push = _mtls_push(*_load(policies))
    filters = _inbound(_sds("ratings-v1"), push)["filter_chains"][0]["filters"][0]["typed_config"][
        "http_filters"
    ]
    assert [f["typed_config"]["rules"].get("action", "ALLOW") for f in filters[:2]] == [
        "DENY",
        "ALLOW",
    ]


def test_gateways_and_plain_proxies_parse():
    push = _mtls_push(
        *_load(MESH_STRICT), samples=("destination-rule-all-mtls", "bookinfo-gateway")
    )
    gateway = FakeProxy(
        "router", "127.0.1.1", "istio-system", {"istio": "ingressgateway"}, WITH_SDS
    )
    for build in (generator.build_listeners, generator.build_clusters):
        assert build(gateway, push, [])
