"""RequestAuthentication: Envoy's JWT filter (jwt_authn) for a workload or gateway.

Istio's semantics: every RequestAuthentication that applies (the workload's own, its
namespace's, the mesh's) adds its rules as providers, and a request needs a valid token
from any of them *or no token at all* (`requires_any` ... `allow_missing`). A missing token
passes, an invalid one is refused with 401; requiring a token is AuthorizationPolicy's job.

Keys are always inline: Pilot fetches a `jwksUri` itself (pilot/bootstrap/jwks.py) and hands
the keys in through the push context, as istiod does by default, so Envoy needs no cluster
for the issuer and a JWKS server that is down costs no request its latency. A URI Pilot
could not fetch gets a key nobody holds: its tokens are refused rather than trusted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pilot.networking import security
from pkg.config.resource import Resource

FILTER_NAME = security.JWT_FILTER
JWT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"

# An RSA public key whose private half was thrown away: a JWKS that verifies no token.
_UNFETCHED_N = (
    "wo-7hy5KPPMzao1M2jS-ffNgdQya6oyy4msrh46dsyL9DehBG1iNQDwfNbvI7xZycgHFVCMX5z5bJn0aL_8pTWivPc"
    "Z2_D8gnREAhH9un4esmgj1dyFhPT1hUpB6DzzfDtqn3f1_WIUWeUShg-pxx2jFh02kCxWcsjDywH7QjtLxYzRE6U"
    "J_eooNWtEZFWBxYWQYowqD0-t4zOxpaQ6bMhTVJzrokRszG1R9J3iF1rR8hPUwql3eUap1L6qqDXRH-JXs0AsK7t2"
    "DLsCKi5p4oABHh8EqhgjfQ_2lFhF7vAHHrdtU-Gxhkxuhd5iclDcxBi27bUTGXiZtF9kjoSCv4Q"
)
UNFETCHED_JWKS = json.dumps(
    {"keys": [{"kty": "RSA", "alg": "RS256", "kid": "unfetched", "e": "AQAB", "n": _UNFETCHED_N}]}
)


def jwks_uris(policies: Sequence[Resource]) -> set[str]:
    """The JWKS URIs Pilot must fetch: rules that name a URI and carry no inline keys."""
    return {
        rule.jwks_uri
        for policy in policies
        for rule in policy.spec.jwt_rules
        if rule.jwks_uri and not rule.jwks
    }


def jwt_filter(
    policies: Sequence[Resource],
    namespace: str,
    labels: Mapping[str, str],
    root_namespace: str,
    jwks: Mapping[str, str],
    *,
    clear_route_cache: bool = False,
) -> dict[str, Any] | None:
    """The jwt_authn filter for the RequestAuthentications that apply, or None if none does.

    `jwks` maps a jwksUri to the key set fetched from it. `clear_route_cache` (gateways)
    makes Envoy choose the route again once the payload is known, for claim matches.
    """
    rules = [
        rule
        for policy in security.applying(policies, namespace, labels, root_namespace)
        for rule in policy.spec.jwt_rules
    ]
    if not rules:
        return None
    providers = {
        f"origins-{i}": _provider(rule, jwks, clear_route_cache) for i, rule in enumerate(rules)
    }
    requirement: dict[str, Any] = {
        "requires_any": {
            "requirements": [{"provider_name": name} for name in providers]
            + [{"allow_missing": {}}]
        }
    }
    return {
        "name": FILTER_NAME,
        "typed_config": {
            "@type": JWT_TYPE,
            "providers": providers,
            "rules": [{"match": {"prefix": "/"}, "requires": requirement}],
            # A CORS preflight never carries the token (Istio sets this too).
            "bypass_cors_preflight": True,
        },
    }


DEFAULT_SPACE_DELIMITED_CLAIMS = ("permission", "scope")


def space_delimited_claims(claims: Sequence[str]) -> list[str]:
    """The rule's claims and Istio's two defaults, each once, sorted (as Istio sends them)."""
    return sorted({*claims, *DEFAULT_SPACE_DELIMITED_CLAIMS})


def _provider(rule: Any, jwks: Mapping[str, str], clear_route_cache: bool) -> dict[str, Any]:
    keys = rule.jwks or jwks.get(rule.jwks_uri) or UNFETCHED_JWKS
    provider: dict[str, Any] = {
        "local_jwks": {"inline_string": keys},
        "payload_in_metadata": security.JWT_PAYLOAD,
        # Claims Envoy splits at whitespace into lists in that payload, so that a policy
        # matches each value: Istio's `scope` and `permission`, and the rule's own.
        "normalize_payload_in_metadata": {
            "space_delimited_claims": space_delimited_claims(rule.space_delimited_claims)
        },
        "forward": rule.forward_original_token,
    }
    if rule.issuer:
        provider["issuer"] = rule.issuer
    if rule.audiences:
        provider["audiences"] = list(rule.audiences)
    # With no location given Envoy looks where Istio documents: `Authorization: Bearer`
    # and the `access_token` query parameter.
    if rule.from_headers:
        provider["from_headers"] = [
            {"name": h.name, **({"value_prefix": h.prefix} if h.prefix else {})}
            for h in rule.from_headers
        ]
    if rule.from_params:
        provider["from_params"] = list(rule.from_params)
    if rule.from_cookies:
        provider["from_cookies"] = list(rule.from_cookies)
    if rule.output_payload_to_header:
        provider["forward_payload_header"] = rule.output_payload_to_header
    if rule.output_claim_to_headers:
        provider["claim_to_headers"] = [
            {"header_name": c.header, "claim_name": c.claim} for c in rule.output_claim_to_headers
        ]
    if clear_route_cache:
        provider["clear_route_cache"] = True
    return provider
