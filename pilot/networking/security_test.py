"""mTLS and authorization in generated config: what each side presents, accepts and allows."""

import copy
import dataclasses
import json
import subprocess
import textwrap

from google.protobuf import json_format

from pilot.networking import generator, security, tcproute
from pilot.networking.testing import FakeProxy, bookinfo_push, sidecar, workload_entries
from pkg.config import loader
from pkg.testing.envoy import envoy_path

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


def _policies(push, pod="ratings-v1"):
    """The RBAC policies of the pod's inbound listener, by name."""
    filters = _inbound(_sds(pod), push)["filter_chains"][0]["filters"][0]["typed_config"][
        "http_filters"
    ]
    rbac = next(f for f in filters if f["name"] == "envoy.filters.http.rbac")
    return rbac["typed_config"]["rules"]["policies"]


def _keys(tree):
    """Every field name anywhere in a config tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield key
            yield from _keys(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _keys(value)


def _name_match(principal):
    return principal["authenticated"]["principal_name"]


SEVERAL_FROMS = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: several-froms, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-reviews", "cluster.local/ns/default/sa/x"]}
    - source: {namespaces: [istio-system], notIpBlocks: ["10.0.0.0/8"]}
    to:
    - operation: {methods: [GET]}
    - operation: {paths: ["/ratings/*"]}
    when:
    - {key: source.ip, values: ["127.0.0.0/8"]}
    - {key: "request.headers[x-test]", values: ["ok"]}
"""


def test_several_from_entries_are_a_principal_each_never_or_rules():
    # Istio: "a match occurs when at least one source, one operation and all conditions
    # match". Each `from` is its own principal (Envoy ORs the list), the AND of its fields
    # (each an OR of its values) and of the source conditions; likewise each `to`.
    (rule,) = _policies(_mtls_push(*_load(SEVERAL_FROMS))).values()
    first, second = rule["principals"]
    source_ip = {"direct_remote_ip": {"address_prefix": "127.0.0.0", "prefix_len": 8}}
    principals, condition = first["and_ids"]["ids"]
    assert [_name_match(p) for p in principals["or_ids"]["ids"]] == [
        {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"},
        {"exact": "spiffe://cluster.local/ns/default/sa/x"},
    ]
    assert condition == source_ip
    namespace, not_ip, condition = second["and_ids"]["ids"]
    assert _name_match(namespace) == {
        "safe_regex": {"regex": "spiffe://cluster\\.local/ns/istio\\-system/.*"}
    }
    assert not_ip == {
        "not_id": {"direct_remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}
    }
    assert condition == source_ip
    header = {"header": {"name": "x-test", "string_match": {"exact": "ok"}}}
    assert rule["permissions"] == [
        {"and_rules": {"rules": [{"header": {"name": ":method", "string_match": {"exact": "GET"}}}, header]}},
        {"and_rules": {"rules": [{"url_path": {"path": {"prefix": "/ratings/"}}}, header]}},
    ]  # fmt: skip
    assert "or_rules" not in set(_keys(rule["principals"]))


TRUST_DOMAINS = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: trust-domains, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  rules:
  - from: [{source: {trustDomains: [td1, "*", "td2-*", "*.example.com"]}}]
  - from: [{source: {notTrustDomains: [evil.test]}}]
  - when: [{key: source.trustDomain, values: [td3]}]
"""


def test_trust_domains_match_the_peer_spiffe_id_as_istios_builder_does():
    policies = _policies(_mtls_push(*_load(TRUST_DOMAINS)))
    rule = policies["ns[default]-policy[trust-domains]-rule[0]"]
    (principal,) = rule["principals"]
    assert [_name_match(p) for p in principal["or_ids"]["ids"]] == [
        {"prefix": "spiffe://td1/"},  # exact: the whole domain, then its path
        {"prefix": "spiffe://"},  # presence: any SPIFFE identity
        {"safe_regex": {"regex": "spiffe://td2\\-[^/]*/.*"}},  # prefix: within the domain
        {"safe_regex": {"regex": "spiffe://[^/]*\\.example\\.com/.*"}},  # suffix
    ]
    (negated,) = policies["ns[default]-policy[trust-domains]-rule[1]"]["principals"]
    assert _name_match(negated["not_id"]) == {"prefix": "spiffe://evil.test/"}
    (condition,) = policies["ns[default]-policy[trust-domains]-rule[2]"]["principals"]
    assert _name_match(condition) == {"prefix": "spiffe://td3/"}


def test_service_accounts_and_remote_ip_blocks_are_enforced():
    policy = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: accounts, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  rules:
  - from: [{source: {serviceAccounts: [bookinfo-reviews, other/sa], remoteIpBlocks: ["192.0.2.0/24"]}}]
"""
    (rule,) = _policies(_mtls_push(*_load(policy))).values()
    (principal,) = rule["principals"]
    accounts, remote = principal["and_ids"]["ids"]
    # `<name>` is the policy's namespace; any trust domain; the account name whole.
    assert [_name_match(p)["safe_regex"]["regex"] for p in accounts["or_ids"]["ids"]] == [
        "spiffe://.+/ns/default/(.+/|)sa/bookinfo\\-reviews(/.+)?",
        "spiffe://.+/ns/other/(.+/|)sa/sa(/.+)?",
    ]
    assert remote == {"remote_ip": {"address_prefix": "192.0.2.0", "prefix_len": 24}}


EVERY_FIELD = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: every-field, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  rules:
  - from:
    - source: {principals: [cluster.local/ns/default/sa/a], notPrincipals: ["*/sa/b"], requestPrincipals: ["iss/sub"]}
    - source: {serviceAccounts: [reviews], notServiceAccounts: [x/y], trustDomains: ["td-*"], notTrustDomains: ["*"]}
    - source: {namespaces: [default], notNamespaces: [foo], ipBlocks: ["10.1.0.0/16"], notIpBlocks: ["10.1.2.3"],
               remoteIpBlocks: ["192.0.2.1"], notRemoteIpBlocks: ["2001:db8::/32"]}
    to:
    - operation: {methods: [GET], notPaths: ["/admin*"], hosts: ["*.example.com"], ports: ["9080"]}
    when:
    - {key: source.trustDomain, notValues: [evil.test]}
    - {key: source.serviceAccount, values: [default/reviews]}
    - {key: remote.ip, values: ["192.0.2.0/24"]}
    - {key: "request.auth.claims[scope]", values: [read]}
    - {key: destination.ip, values: ["10.1.0.0/16"]}
    - {key: connection.sni, values: ["*.local"]}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  jwtRules:
  - issuer: iss
    jwks: '{"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}'
    spaceDelimitedClaims: [roles]
"""


def _validate_in_envoy(http_filters, tmp_path):
    """Envoy's own verdict on a listener holding these HTTP filters (`--mode validate`)."""
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "t",
        "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
        "http_filters": http_filters,
    }  # fmt: skip
    bootstrap = {
        "static_resources": {
            "listeners": [
                {
                    "name": "l",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    }
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(bootstrap))
    return subprocess.run(
        [envoy_path(), "--mode", "validate", "-c", str(config), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_real_envoy_accepts_the_generated_rbac_and_jwt_filters(tmp_path):
    push = _mtls_push(*_load(SEVERAL_FROMS), *_load(TRUST_DOMAINS), *_load(EVERY_FIELD))
    filters = _inbound(_sds("ratings-v1"), push)["filter_chains"][0]["filters"][0]["typed_config"][
        "http_filters"
    ]
    names = [f["name"] for f in filters]
    assert names == [
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.rbac",
        "envoy.filters.http.router",
    ]
    jwt_provider = next(iter(filters[0]["typed_config"]["providers"].values()))
    assert jwt_provider["normalize_payload_in_metadata"] == {
        "space_delimited_claims": ["permission", "roles", "scope"]
    }
    assert len(filters[1]["typed_config"]["rules"]["policies"]) == 5
    result = _validate_in_envoy(filters, tmp_path)
    assert result.returncode == 0, textwrap.shorten(result.stdout + result.stderr, 2000)

    # The control: the shape generated before, `or_rules` among the principals, is one
    # Envoy refuses (a Principal has no such field).
    rbac = copy.deepcopy(filters[1])
    (rule,) = [r for n, r in rbac["typed_config"]["rules"]["policies"].items() if "several" in n]
    rule["principals"] = [{"or_rules": {"rules": rule["principals"]}}]
    refused = _validate_in_envoy([rbac, filters[2]], tmp_path)
    assert refused.returncode != 0
    assert "or_rules" in refused.stdout + refused.stderr


# Authorization on TCP: Istio's network RBAC filter, from the same policies.

TCP_TASK_ALLOW = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: foo}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: ALLOW
  rules: [{to: [{operation: {ports: ["9000", "9001"]}}]}]
"""
TCP_TASK_ALLOW_GET = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: foo}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: ALLOW
  rules: [{to: [{operation: {methods: ["GET"], ports: ["9000"]}}]}]
"""
TCP_TASK_DENY_GET = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: foo}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: DENY
  rules: [{to: [{operation: {methods: ["GET"], ports: ["9000"]}}]}]
"""
TCP_ECHO_LABELS = {"app": "tcp-echo"}


def _network_rules(text, labels=TCP_ECHO_LABELS, namespace="foo"):
    filters = security.rbac_network_filters(
        _load(text), namespace, labels, "istio-system", "cluster.local"
    )
    for f in filters:
        assert f["name"] == "envoy.filters.network.rbac"
        assert f["typed_config"]["@type"] == security.RBAC_NETWORK_TYPE
        assert f["typed_config"]["stat_prefix"] == "tcp."
    return [f["typed_config"]["rules"] for f in filters]


def _http_rules(text, labels=TCP_ECHO_LABELS, namespace="foo"):
    filters = security.rbac_filters(_load(text), namespace, labels, "istio-system", "cluster.local")
    return [f["typed_config"]["rules"] for f in filters]


def test_the_tcp_tasks_allow_on_ports_becomes_a_network_rbac_filter():
    (rules,) = _network_rules(TCP_TASK_ALLOW)
    assert rules["action"] == "ALLOW"
    assert rules["policies"] == {
        "ns[foo]-policy[tcp-policy]-rule[0]": {
            "permissions": [
                {"or_rules": {"rules": [{"destination_port": 9000}, {"destination_port": 9001}]}}
            ],
            "principals": [{"any": True}],
        }
    }
    assert _network_rules(TCP_TASK_ALLOW, labels={"app": "other"}) == []


def test_an_allow_rule_with_an_http_only_field_is_left_out_on_tcp():
    # Istio's task: `methods: [GET]` on a TCP port makes the ALLOW allow nothing there.
    (rules,) = _network_rules(TCP_TASK_ALLOW_GET)
    assert rules == {"action": "ALLOW", "policies": {}}
    # The HTTP filter keeps the rule whole.
    (http,) = _http_rules(TCP_TASK_ALLOW_GET)
    (rule,) = http["policies"].values()
    assert rule["permissions"][0]["and_rules"]["rules"] == [
        {"header": {"name": ":method", "string_match": {"exact": "GET"}}},
        {"destination_port": 9000},
    ]


def test_a_deny_rule_ignores_its_http_only_fields_on_tcp_and_denies_the_whole_port():
    (rules,) = _network_rules(TCP_TASK_DENY_GET)
    assert rules["action"] == "DENY"
    assert rules["policies"] == {
        "ns[foo]-policy[tcp-policy]-rule[0]": {
            "permissions": [{"destination_port": 9000}],
            "principals": [{"any": True}],
        }
    }


HTTP_ONLY_EVERYWHERE = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: %(name)s, namespace: foo}
spec:
  action: %(action)s
  rules:
  - from:
    - source: {requestPrincipals: ["iss/sub"], namespaces: [bar]}
    to:
    - operation: {notPaths: [/healthz], hosts: [a.example], notMethods: [PUT], ports: ["9000"]}
    when:
    - {key: "request.headers[x-user]", values: [admin]}
    - {key: "request.auth.claims[groups]", values: [ops]}
    - {key: source.ip, values: [10.0.0.0/8]}
"""


def test_every_http_only_field_is_dropped_from_deny_and_audit_and_sinks_an_allow():
    allow = HTTP_ONLY_EVERYWHERE % {"name": "a", "action": "ALLOW"}
    assert _network_rules(allow) == [{"action": "ALLOW", "policies": {}}]
    for action, envoy_action in (("DENY", "DENY"), ("AUDIT", "LOG")):
        (rules,) = _network_rules(HTTP_ONLY_EVERYWHERE % {"name": "d", "action": action})
        assert rules["action"] == envoy_action
        (rule,) = rules["policies"].values()
        assert rule["permissions"] == [{"destination_port": 9000}]
        (principal,) = rule["principals"]
        # What a connection shows stays: the peer's namespace and its address.
        ids = principal["and_ids"]["ids"]
        assert ids[0]["authenticated"]["principal_name"]["safe_regex"]["regex"].endswith(
            "/ns/bar/.*"
        )
        assert ids[1] == {"direct_remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}
        assert len(ids) == 2
        assert "header" not in json.dumps(rules)
        assert "sourced_metadata" not in json.dumps(rules)


def test_audit_deny_allow_in_istios_order_and_a_policy_without_rules_matches_nothing():
    policies = "\n---\n".join(
        [
            TCP_TASK_ALLOW,
            TCP_TASK_DENY_GET.replace("tcp-policy", "deny"),
            """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: foo}
spec: {action: AUDIT, rules: [{}]}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: foo}
spec: {}
""",
        ]
    )
    for found in (_network_rules(policies), _http_rules(policies)):
        assert [r["action"] for r in found] == ["LOG", "DENY", "ALLOW"]
        assert found[0]["policies"] == {
            "ns[foo]-policy[audit]-rule[0]": {
                "permissions": [{"any": True}],
                "principals": [{"any": True}],
            }
        }
        assert found[2]["policies"]["ns[foo]-policy[allow-nothing]-rule[0]"] == {
            "permissions": [{"not_rule": {"any": True}}],
            "principals": [{"not_id": {"any": True}}],
        }


PEER_AND_ADDRESS = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: peers, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/foo/sa/sleep"]}
    - source: {ipBlocks: [10.102.62.0/24], notRemoteIpBlocks: [10.102.62.9]}
    to: [{operation: {notPorts: ["9001"]}}]
    when: [{key: destination.port, values: ["9000"]}]
"""


def test_principals_and_addresses_are_what_a_tcp_rule_matches_on():
    (rules,) = _network_rules(PEER_AND_ADDRESS, labels={})
    (rule,) = rules["policies"].values()
    assert rule["principals"] == [
        {"authenticated": {"principal_name": {"exact": "spiffe://cluster.local/ns/foo/sa/sleep"}}},
        {
            "and_ids": {
                "ids": [
                    {"not_id": {"remote_ip": {"address_prefix": "10.102.62.9", "prefix_len": 32}}},
                    {"direct_remote_ip": {"address_prefix": "10.102.62.0", "prefix_len": 24}},
                ]
            }
        },
    ]
    assert rule["permissions"] == [
        {
            "and_rules": {
                "rules": [{"not_rule": {"destination_port": 9001}}, {"destination_port": 9000}]
            }
        }
    ]


def _validate_network_in_envoy(network_filters, tmp_path):
    """Envoy's verdict on a TCP listener: these network filters, then a tcp_proxy."""
    bootstrap = {
        "static_resources": {
            "clusters": [{"name": "c", "connect_timeout": "1s"}],
            "listeners": [
                {
                    "name": "l",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
                    "filter_chains": [
                        {
                            "filters": [
                                *network_filters,
                                tcproute.tcp_proxy([("c", 100)]),
                            ]
                        }
                    ],
                }
            ],
        }
    }
    config = tmp_path / "envoy-tcp.json"
    config.write_text(json.dumps(bootstrap))
    return subprocess.run(
        [envoy_path(), "--mode", "validate", "-c", str(config), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_real_envoy_accepts_the_generated_network_rbac_filters(tmp_path):
    texts = [
        TCP_TASK_ALLOW,
        TCP_TASK_DENY_GET.replace("tcp-policy", "deny"),
        HTTP_ONLY_EVERYWHERE % {"name": "audit", "action": "AUDIT"},
        PEER_AND_ADDRESS,
        TRUST_DOMAINS,
    ]
    policies = [r for t in texts for r in _load(t)]
    filters = security.rbac_network_filters(
        policies, "foo", TCP_ECHO_LABELS, "istio-system", "cluster.local"
    )
    assert [f["typed_config"]["rules"]["action"] for f in filters] == ["LOG", "DENY", "ALLOW"]
    result = _validate_network_in_envoy(filters, tmp_path)
    assert result.returncode == 0, textwrap.shorten(result.stdout + result.stderr, 2000)
    # The control: the check can fail (a principal has no `or_rules`).
    broken = copy.deepcopy(filters[1])
    (rule,) = broken["typed_config"]["rules"]["policies"].values()
    rule["principals"] = [{"or_rules": {"rules": rule["principals"]}}]
    refused = _validate_network_in_envoy([broken], tmp_path)
    assert refused.returncode != 0
    assert "or_rules" in refused.stdout + refused.stderr
