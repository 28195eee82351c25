"""RequestAuthentication as jwt_authn, and AuthorizationPolicy on request principals and claims."""

import dataclasses
import json

from google.protobuf import descriptor_pool, json_format, message_factory

from pilot.networking import generator, jwt
from pilot.networking.testing import FakeProxy, bookinfo_push, sidecar
from pkg.config import loader

GATEWAY = FakeProxy("router", "127.0.1.1", "istio-system", {"istio": "ingressgateway"})
ISSUER = "https://issuer.test"
# A real RSA modulus: Envoy loads inline keys and refuses ones that are not keys.
MODULUS = json.loads(jwt.UNFETCHED_JWKS)["keys"][0]["n"]
KEYS = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "e": "AQAB", "n": MODULUS}]})
FETCHED = json.dumps({"keys": [{"kty": "RSA", "kid": "k2", "e": "AQAB", "n": MODULUS}]})

PRODUCTPAGE_JWT = f"""
apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata: {{name: productpage-jwt, namespace: default}}
spec:
  selector: {{matchLabels: {{app: productpage}}}}
  jwtRules:
  - issuer: {ISSUER}
    jwks: '{KEYS}'
    audiences: [bookinfo]
    fromHeaders: [{{name: x-jwt, prefix: "Token "}}]
    fromParams: [token]
    outputPayloadToHeader: x-jwt-payload
    forwardOriginalToken: true
    spaceDelimitedClaims: [roles, provider.login.scope, scope]
  - issuer: other@issuer.test
    jwksUri: http://keys.test/jwks.json
"""
GATEWAY_JWT = """
apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata: {name: ingress-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules: [{issuer: gw@issuer.test, jwksUri: "http://down.test/jwks.json"}]
"""


def _load(text):
    return loader.load_text(text, source="test")


def _dicts(resources):
    return {n: json_format.MessageToDict(m, preserving_proto_field_name=True) for n, m in resources}


def _http_filters(proxy, push, listener):
    found = _dicts(generator.build_listeners(proxy, push, []))[listener]
    return found["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]


def _push(*texts, jwks=None):
    push = bookinfo_push(extra=[r for t in texts for r in _load(t)])
    return dataclasses.replace(push, jwks=jwks or {})


def test_request_authentication_becomes_providers_that_also_let_no_token_pass():
    push = _push(PRODUCTPAGE_JWT, jwks={"http://keys.test/jwks.json": FETCHED})
    filters = _http_filters(sidecar("productpage-v1"), push, "virtualInbound")
    assert [f["name"] for f in filters] == [jwt.FILTER_NAME, "envoy.filters.http.router"]
    config = filters[0]["typed_config"]
    first, second = config["providers"]["origins-0"], config["providers"]["origins-1"]
    assert first == {
        "issuer": ISSUER,
        "audiences": ["bookinfo"],
        "local_jwks": {"inline_string": KEYS},
        "forward": True,
        "from_headers": [{"name": "x-jwt", "value_prefix": "Token "}],
        "from_params": ["token"],
        "forward_payload_header": "x-jwt-payload",
        "payload_in_metadata": "payload",
        # The rule's space-delimited claims with Istio's two, once each, sorted.
        "normalize_payload_in_metadata": {
            "space_delimited_claims": ["permission", "provider.login.scope", "roles", "scope"]
        },
    }
    # The jwksUri's keys come from Pilot's fetch, inline; Envoy's default token locations.
    assert second == {
        "issuer": "other@issuer.test",
        "local_jwks": {"inline_string": FETCHED},
        "payload_in_metadata": "payload",
        "normalize_payload_in_metadata": {"space_delimited_claims": ["permission", "scope"]},
    }
    (rule,) = config["rules"]
    assert rule["match"] == {"prefix": "/"}
    assert rule["requires"]["requires_any"]["requirements"] == [
        {"provider_name": "origins-0"},
        {"provider_name": "origins-1"},
        {"allow_missing": {}},
    ]


def test_only_workloads_selected_get_the_filter_and_the_root_namespace_covers_all():
    push = _push(PRODUCTPAGE_JWT)
    assert [f["name"] for f in _http_filters(sidecar("reviews-v1"), push, "virtualInbound")] == [
        "envoy.filters.http.router"
    ]
    mesh_wide = "\n".join(
        line for line in GATEWAY_JWT.splitlines() if "selector" not in line
    ).replace("ingress-jwt", "mesh-jwt")
    push = _push(mesh_wide)
    for proxy in (sidecar("reviews-v1"), sidecar("ratings-v1")):
        names = [f["name"] for f in _http_filters(proxy, push, "virtualInbound")]
        assert names[0] == jwt.FILTER_NAME


def test_an_unfetched_jwks_uri_trusts_no_token():
    push = bookinfo_push("bookinfo-gateway", extra=_load(GATEWAY_JWT))
    filters = _http_filters(GATEWAY, push, "0.0.0.0_8080")
    assert [f["name"] for f in filters] == [
        jwt.FILTER_NAME,
        "envoy.filters.http.fault",
        "envoy.filters.http.router",
    ]
    provider = filters[0]["typed_config"]["providers"]["origins-0"]
    assert provider["local_jwks"] == {"inline_string": jwt.UNFETCHED_JWKS}
    # The gateway picks its route again once the payload is known (claim matches).
    assert provider["clear_route_cache"] is True


def test_jwks_uris_are_those_without_inline_keys():
    policies = _load(PRODUCTPAGE_JWT) + _load(GATEWAY_JWT)
    assert jwt.jwks_uris(policies) == {
        "http://keys.test/jwks.json",
        "http://down.test/jwks.json",
    }


REQUIRE_PRINCIPAL = f"""
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {{name: require-jwt, namespace: default}}
spec:
  selector: {{matchLabels: {{app: productpage}}}}
  action: ALLOW
  rules:
  - from: [{{source: {{requestPrincipals: ["{ISSUER}/alice", "*@issuer.test/*"]}}}}]
    when: [{{key: "request.auth.claims[groups]", values: [admins]}}]
"""


def _payload(path, value):
    return {
        "sourced_metadata": {
            "metadata_matcher": {
                "filter": "envoy.filters.http.jwt_authn",
                "path": [{"key": "payload"}, *({"key": k} for k in path)],
                "value": value,
            }
        }
    }


def test_request_principals_and_claims_match_the_verified_payload():
    push = _push(PRODUCTPAGE_JWT, REQUIRE_PRINCIPAL)
    filters = _http_filters(sidecar("productpage-v1"), push, "virtualInbound")
    assert [f["name"] for f in filters] == [
        jwt.FILTER_NAME,
        "envoy.filters.http.rbac",
        "envoy.filters.http.router",
    ]
    (policy,) = filters[1]["typed_config"]["rules"]["policies"].values()
    (principal,) = policy["principals"]
    sources, claim = principal["and_ids"]["ids"]
    exact, pattern = sources["or_ids"]["ids"]
    assert exact == {
        "and_ids": {
            "ids": [
                _payload(["iss"], {"string_match": {"exact": ISSUER}}),
                _payload(["sub"], {"string_match": {"exact": "alice"}}),
            ]
        }
    }
    assert pattern == {
        "and_ids": {
            "ids": [
                _payload(["iss"], {"string_match": {"suffix": "@issuer.test"}}),
                _payload(["sub"], {"present_match": True}),
            ]
        }
    }
    # A claim is a string or a list of strings.
    assert claim == {
        "or_ids": {
            "ids": [
                _payload(["groups"], {"string_match": {"exact": "admins"}}),
                _payload(
                    ["groups"], {"list_match": {"one_of": {"string_match": {"exact": "admins"}}}}
                ),
            ]
        }
    }


def test_any_request_principal_and_other_auth_keys():
    policy = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: any-user, namespace: default}
spec:
  action: DENY
  rules:
  - from: [{source: {notRequestPrincipals: ["*"]}}]
  - when:
    - {key: request.auth.principal, values: ["bad@issuer.test/mallory"]}
    - {key: "request.auth.claims[realm][role]", notValues: [user]}
    - {key: request.auth.audiences, values: [other]}
"""
    push = _push(policy)
    (rbac, _) = _http_filters(sidecar("ratings-v1"), push, "virtualInbound")
    policies = rbac["typed_config"]["rules"]["policies"]
    missing = policies["ns[default]-policy[any-user]-rule[0]"]["principals"][0]
    assert missing == {"not_id": _payload(["iss"], {"present_match": True})}
    # No `from`: the principal is the AND of the conditions alone (no `any` among them).
    conditions = policies["ns[default]-policy[any-user]-rule[1]"]["principals"][0]["and_ids"]["ids"]
    assert len(conditions) == 3
    assert conditions[0]["and_ids"]["ids"][1]["sourced_metadata"]["metadata_matcher"]["path"] == [
        {"key": "payload"},
        {"key": "sub"},
    ]
    nested = conditions[1]["not_id"]["or_ids"]["ids"][0]["sourced_metadata"]["metadata_matcher"][
        "path"
    ]
    assert nested == [{"key": "payload"}, {"key": "realm"}, {"key": "role"}]
    assert conditions[2]["or_ids"]["ids"][0]["sourced_metadata"]["metadata_matcher"]["path"][1] == {
        "key": "aud"
    }


CLAIM_ROUTES = """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - uri: {exact: /productpage}
      headers: {"@request.auth.claims.groups": {exact: admins}}
      withoutHeaders: {"@request.auth.claims[realm][banned]": {}}
    route: [{destination: {host: reviews, port: {number: 9080}}}]
  - route: [{destination: {host: productpage, port: {number: 9080}}}]
"""


def test_gateway_routes_match_claims_in_the_verified_payload():
    push = bookinfo_push("bookinfo-gateway", extra=_load(GATEWAY_JWT) + _load(CLAIM_ROUTES))
    (config,) = [
        json_format.MessageToDict(m, preserving_proto_field_name=True)
        for _, m in generator.build_routes(GATEWAY, push, ["http.8080"])
    ]
    first = config["virtual_hosts"][0]["routes"][0]["match"]
    assert first["path"] == "/productpage"
    assert "headers" not in first
    string = {"string_match": {"exact": "admins"}}
    assert first["dynamic_metadata"] == [
        {
            "filter": "envoy.filters.http.jwt_authn",
            "path": [{"key": "payload"}, {"key": "groups"}],
            "value": {"or_match": {"value_matchers": [string, {"list_match": {"one_of": string}}]}},
        },
        {
            "filter": "envoy.filters.http.jwt_authn",
            "path": [{"key": "payload"}, {"key": "realm"}, {"key": "banned"}],
            "value": {"present_match": True},
            "invert": True,
        },
    ]


def _deprecated_fields(message, path="") -> list[str]:
    """Fields set anywhere in `message` (typed configs unpacked) that Envoy deprecates:
    the mesh's Envoys refuse them (fail_on_any_deprecated_feature)."""
    found = []
    if message.DESCRIPTOR.full_name == "google.protobuf.Any":
        descriptor = descriptor_pool.Default().FindMessageTypeByName(message.TypeName())
        inner = message_factory.GetMessageClass(descriptor)()
        message.Unpack(inner)
        return _deprecated_fields(inner, path)
    for field, value in message.ListFields():
        where = f"{path}.{field.name}"
        if field.GetOptions().deprecated:
            found.append(where)
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values()) if field.message_type.fields[1].message_type else []
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            found += _deprecated_fields(item, where)
    return found


def test_generated_config_uses_no_deprecated_envoy_field():
    push = dataclasses.replace(
        bookinfo_push(
            "bookinfo-gateway",
            extra=_load(PRODUCTPAGE_JWT) + _load(REQUIRE_PRINCIPAL) + _load(GATEWAY_JWT),
        ),
        jwks={"http://keys.test/jwks.json": FETCHED},
    )
    claims = bookinfo_push("bookinfo-gateway", extra=_load(GATEWAY_JWT) + _load(CLAIM_ROUTES))
    resources = [
        *generator.build_listeners(sidecar("productpage-v1"), push, []),
        *generator.build_listeners(GATEWAY, push, []),
        *generator.build_routes(GATEWAY, claims, ["http.8080"]),
    ]
    assert resources
    assert [f for _, m in resources for f in _deprecated_fields(m)] == []
