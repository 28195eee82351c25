"""PeerAuthentication and RequestAuthentication (after Istio's validators of each)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa

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


MAX_SPACE_DELIMITED_CLAIMS = 64


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
        problem = jwks_problem(rule.jwks)
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
    # spaceDelimitedClaims: what Istio's CRD schema holds them to (items minLength 1,
    # maxItems 64), as the API server would refuse them.
    claims_path = path / "spaceDelimitedClaims"
    if len(rule.space_delimited_claims) > MAX_SPACE_DELIMITED_CLAIMS:
        out.error(
            claims_path,
            f"Too many: {len(rule.space_delimited_claims)}: must have at most "
            f"{MAX_SPACE_DELIMITED_CLAIMS} items",
        )
    for index, claim in enumerate(rule.space_delimited_claims):
        if not claim:
            out.error(claims_path / index, "space delimited claim must be non-empty string")
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


def jwks_problem(text: str) -> str | None:
    """Why `text` is not a JWK set (`{"keys": [...]}`, or one JWK) Envoy can use, else None.

    Envoy refuses a whole listener whose jwt_authn has inline keys it cannot parse, so Pilot
    checks what Envoy checks: a key type it knows, that type's fields as base64url, an `alg`
    of the key's family. Pilot's own JWKS fetches use the same check.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        return f"failed to unmarshal JWK set: {error}"
    if not isinstance(data, dict):
        return "failed to unmarshal JWK set: not a JSON object"
    keys = data.get("keys") if "keys" in data else [data]
    if not isinstance(keys, list):
        return "failed to unmarshal JWK set: keys is not a list"
    if not keys:
        return "JWK set has no keys"
    for index, key in enumerate(keys):
        problem = _jwk_problem(key)
        if problem:
            return f"failed to parse key #{index}: {problem}"
    return None


# Per key type: the fields that must be base64url, the allowed curves, the `alg` family.
_KEY_TYPES: dict[str, tuple[tuple[str, ...], frozenset[str], tuple[str, ...]]] = {
    "RSA": (("n", "e"), frozenset(), ("RS", "PS")),
    "EC": (("x", "y"), frozenset({"P-256", "P-384", "P-521"}), ("ES",)),
    "oct": (("k",), frozenset(), ("HS",)),
    "OKP": (("x",), frozenset({"Ed25519"}), ("EdDSA",)),
}
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def _jwk_problem(key: object) -> str | None:
    if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
        return "no key type (kty)"
    kind = _KEY_TYPES.get(key["kty"])
    if kind is None:
        return f"key type {key['kty']!r} is not one of {', '.join(_KEY_TYPES)}"
    fields, curves, algs = kind
    for name in fields:
        value = key.get(name)
        if not isinstance(value, str) or not _BASE64URL.match(value):
            return f"{key['kty']} key field {name!r} is missing or not base64url"
    if curves and key.get("crv") not in curves:
        return f"{key['kty']} key curve (crv) must be one of {', '.join(sorted(curves))}"
    alg = key.get("alg")
    if alg is not None and (not isinstance(alg, str) or not alg.startswith(algs)):
        return f"alg {alg!r} does not fit a {key['kty']} key"
    return _key_material_problem(key)


def _key_material_problem(key: dict) -> str | None:
    """The key itself, as Envoy's BoringSSL loads it: an RSA modulus and exponent that make
    a public key, an EC point on its curve, an Ed25519 key of 32 bytes."""
    kty = key["kty"]
    try:
        if kty == "RSA":
            modulus = _number(key["n"])
            if modulus.bit_length() < _MIN_RSA_BITS:
                return f"RSA key modulus (n) must have at least {_MIN_RSA_BITS} bits"
            rsa.RSAPublicNumbers(_number(key["e"]), modulus).public_key()
        elif kty == "EC":
            curve = _CURVES[key["crv"]]()
            ec.EllipticCurvePublicNumbers(_number(key["x"]), _number(key["y"]), curve).public_key()
        elif kty == "OKP" and len(_bytes(key["x"])) != 32:
            return "OKP key field 'x' must be 32 bytes"
    except ValueError as error:
        return f"{kty} key is not a valid public key: {error}"
    return None


# BoringSSL, in Envoy, loads no smaller RSA key (seen with Envoy 1.40: 511 bits refused).
_MIN_RSA_BITS = 512
_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}


def _bytes(value: str) -> bytes:
    return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))


def _number(value: str) -> int:
    return int.from_bytes(_bytes(value), "big")
