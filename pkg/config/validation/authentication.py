"""PeerAuthentication and RequestAuthentication (after Istio's validators of each)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from pkg.config.validation import headers
from pkg.config.validation.common import check_duration
from pkg.config.validation.result import FieldPath, ValidationResult
from pkg.config.validation.targets import check_policy_targets


def validate_peer_authentication(spec, path: FieldPath, out: ValidationResult) -> None:
    check_policy_targets(spec, path, out)
    mtls_path = path / "portLevelMtls"
    if spec.port_level_mtls and not spec.selector.match_labels:
        out.error(mtls_path, "mesh/namespace peer authentication cannot have port level mTLS")
    # `portLevelMtls: {}` parses to the same proto as no portLevelMtls; Istio tells them apart.
    if out.written_empty(mtls_path):
        out.error(mtls_path, "port level mTLS, if defined, must have at least one element")
    for port in sorted(spec.port_level_mtls):
        if not 0 < port <= 65535:
            out.error(mtls_path / str(port), "port must be in range 1..65535")


def validate_request_authentication(spec, path: FieldPath, out: ValidationResult) -> None:
    check_policy_targets(spec, path, out)
    for index, rule in enumerate(spec.jwt_rules):
        _check_jwt_rule(rule, path / "jwtRules" / index, out)


def _check_jwt_rule(rule, path: FieldPath, out: ValidationResult) -> None:
    for index, audience in enumerate(rule.audiences):
        if not audience:
            out.error(path / "audiences" / index, "audience must be non-empty string")
    if not rule.issuer and not rule.jwks_uri:
        out.error(path / "issuer", "issuer or jwksUri must be non-empty string")
    if rule.jwks_uri:
        problem = _jwks_uri_problem(rule.jwks_uri)
        if problem:
            out.error(path / "jwksUri", problem)
    if rule.jwks:
        problem = _jwks_problem(rule.jwks)
        if problem:
            out.error(path / "jwks", f"jwks parse error: {problem}")
    for index, location in enumerate(rule.from_headers):
        if not location.name:
            out.error(
                path / "fromHeaders" / index / "name",
                "location header name must be non-empty string",
            )
    for index, param in enumerate(rule.from_params):
        if not param:
            out.error(path / "fromParams" / index, "location query must be non-empty string")
    for index, cookie in enumerate(rule.from_cookies):
        if not cookie:
            out.error(path / "fromCookies" / index, "cookie name must be non-empty string")
    for index, claim in enumerate(rule.output_claim_to_headers):
        claim_path = path / "outputClaimToHeaders" / index
        if not claim.claim or not claim.header:
            out.error(
                claim_path,
                "outputClaimToHeaders header and claim value must be non-empty string",
            )
            continue
        problem = headers.check_strict_name(claim.header)
        if problem:
            out.error(claim_path / "header", problem)
    if rule.HasField("timeout"):
        check_duration(rule.timeout, path / "timeout", out)


def _jwks_uri_problem(uri: str) -> str | None:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as error:
        return f"parse {uri!r}: {error}"
    if parts.scheme not in ("http", "https"):
        return f'URI scheme "{parts.scheme}" is not supported'
    del port
    return None


def _jwks_problem(text: str) -> str | None:
    """A JWK set (`{"keys": [...]}`) or a single JWK: JSON objects that name a key type."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        return f"failed to unmarshal JWK set: {error}"
    if not isinstance(data, dict):
        return "failed to unmarshal JWK set: not a JSON object"
    keys = data.get("keys") if "keys" in data else [data]
    if not isinstance(keys, list):
        return "failed to unmarshal JWK set: keys is not a list"
    for index, key in enumerate(keys):
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
            return f"failed to parse key #{index}: no key type (kty)"
    return None
