"""PeerAuthentication and RequestAuthentication; parameter ids are Istio's case names
(TestValidatePeerAuthentication, TestValidateRequestAuthentication)."""

from __future__ import annotations

import json

import pytest

from pkg.config.validation.testing import check, validate

SELECTOR = {"matchLabels": {"app": "httpbin"}}
# A 2048-bit modulus: Envoy loads no RSA key below 512 bits.
MODULUS = (
    "wo-7hy5KPPMzao1M2jS-ffNgdQya6oyy4msrh46dsyL9DehBG1iNQDwfNbvI7xZycgHFVCMX5z5bJn0aL_8pTWivPc"
    "Z2_D8gnREAhH9un4esmgj1dyFhPT1hUpB6DzzfDtqn3f1_WIUWeUShg-pxx2jFh02kCxWcsjDywH7QjtLxYzRE6U"
    "J_eooNWtEZFWBxYWQYowqD0-t4zOxpaQ6bMhTVJzrokRszG1R9J3iF1rR8hPUwql3eUap1L6qqDXRH-JXs0AsK7t2"
    "DLsCKi5p4oABHh8EqhgjfQ_2lFhF7vAHHrdtU-Gxhkxuhd5iclDcxBi27bUTGXiZtF9kjoSCv4Q"
)
JWKS = json.dumps({"keys": [{"kty": "RSA", "e": "AQAB", "n": MODULUS}]})


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param({}, None, id="empty spec"),
        pytest.param({"selector": {}}, None, id="empty mtls with selector of empty labels"),
        pytest.param(
            {"selector": SELECTOR, "portLevelMtls": {}},
            "port level mTLS, if defined, must have at least one element",
            id="empty port level mtls",
        ),
        pytest.param(
            {"portLevelMtls": {"8080": {"mode": "DISABLE"}}},
            "mesh/namespace peer authentication cannot have port level mTLS",
            id="empty selector with port level mtls",
        ),
        pytest.param(
            {"selector": SELECTOR, "portLevelMtls": {"0": {"mode": "DISABLE"}}},
            "port must be in range 1..65535",
            id="port 0",
        ),
        pytest.param({"selector": SELECTOR, "mtls": {}}, None, id="unset mode"),
        pytest.param(
            {
                "selector": SELECTOR,
                "mtls": {"mode": "STRICT"},
                "portLevelMtls": {"8080": {"mode": "DISABLE"}},
            },
            None,
            id="port level",
        ),
        pytest.param(
            {"selector": SELECTOR, "portLevelMtls": {"acd": {"mode": "STRICT"}}},
            "invalid map key",
            id="bad-port",
        ),
        pytest.param({"mtls": {"mode": "BLAH"}}, "invalid value 'BLAH'", id="bad-mode"),
    ],
)
def test_validate_peer_authentication(spec: dict, error: str | None):
    check(validate("PeerAuthentication", spec), error)


def jwt(**fields) -> dict:
    return {"selector": SELECTOR, "jwtRules": [{"issuer": "foo.com", **fields}]}


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param({}, None, id="empty spec"),
        pytest.param(
            {"jwtRules": [{}]}, "issuer or jwksUri must be non-empty string", id="empty jwt rule"
        ),
        pytest.param(
            {"jwtRules": [{"jwksUri": "https://foo.com/cert"}]},
            None,
            id="empty issuer and set jwksUri",
        ),
        pytest.param(
            jwt(jwksUri="foo.com"), 'URI scheme "" is not supported', id="bad JwksUri - no protocol"
        ),
        pytest.param(
            jwt(jwksUri="https://foo.com:not-a-number"), "jwksUri", id="bad JwksUri - invalid port"
        ),
        pytest.param(jwt(audiences=[""]), "audience must be non-empty string", id="empty value"),
        pytest.param(
            {"selector": {"matchLabels": {"": "v"}}},
            "empty key is not supported in selector",
            id="bad workload selector - empty key",
        ),
        pytest.param({"targetRef": {"kind": "Service", "name": "foo"}}, None, id="good targetRef"),
        pytest.param(
            {"targetRef": {"kind": "Service"}},
            "targetRef name must be set",
            id="bad targetRef - empty name",
        ),
        pytest.param(
            jwt(fromHeaders=[{"name": ""}]),
            "location header name must be non-empty string",
            id="bad header location",
        ),
        pytest.param(
            jwt(fromParams=[""]), "location query must be non-empty string", id="bad param location"
        ),
        pytest.param(
            jwt(fromCookies=[""]), "cookie name must be non-empty string", id="bad cookie location"
        ),
        # spaceDelimitedClaims (istio/api JWTRule field 14): the CRD's item rules.
        pytest.param(
            jwt(spaceDelimitedClaims=["custom_scope", "provider.login.scope"]),
            None,
            id="space delimited claims",
        ),
        pytest.param(
            jwt(spaceDelimitedClaims=[""]),
            "spaceDelimitedClaims[0]: space delimited claim must be non-empty string",
            id="empty space delimited claim",
        ),
        pytest.param(
            jwt(spaceDelimitedClaims=[f"c{i}" for i in range(65)]),
            "Too many: 65: must have at most 64 items",
            id="too many space delimited claims",
        ),
        pytest.param(
            jwt(
                jwksUri="https://foo.com",
                fromHeaders=[{"name": "x-foo", "prefix": "Bearer "}],
                fromParams=["x_foo"],
                fromCookies=["c"],
            ),
            None,
            id="good",
        ),
        pytest.param(jwt(jwks=JWKS), None, id="jwks ok"),
        pytest.param(jwt(jwks="foo"), "jwks parse error", id="jwks error"),
        pytest.param(
            jwt(jwks='{"keys": [{"e": "AQAB"}]}'), "jwks parse error", id="jwks key without type"
        ),
        # Envoy refuses a listener whose inline keys it cannot load: so does the store.
        pytest.param(jwt(jwks='{"keys": []}'), "JWK set has no keys", id="jwks without keys"),
        pytest.param(
            jwt(jwks='{"keys": [{"kty": "foo"}]}'), "key type 'foo'", id="jwks unknown kty"
        ),
        pytest.param(
            jwt(jwks='{"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}'),
            "field 'n' is missing or not base64url",
            id="jwks rsa n not base64url",
        ),
        pytest.param(
            jwt(
                jwks='{"keys": [{"kty": "RSA", "n": "xAE7eB6qugXyCAG3yhh7pkDkT65pHymX", "e": "AQAB"}]}'
            ),
            "at least 512 bits",
            id="jwks rsa modulus too short",
        ),
        pytest.param(
            jwt(jwks=JWKS.replace('"AQAB"', '"' + MODULUS + '"')),
            "RSA key is not a valid public key",
            id="jwks rsa exponent not below the modulus",
        ),
        pytest.param(
            jwt(jwks=JWKS.replace('"kty"', '"alg": "ES256", "kty"')),
            "alg 'ES256' does not fit a RSA key",
            id="jwks alg of another family",
        ),
        pytest.param(
            jwt(jwks='{"keys": [{"kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB"}]}'),
            "Point is not on the curve",
            id="jwks ec point off its curve",
        ),
        pytest.param(
            jwt(jwks='{"keys": [{"kty": "EC", "crv": "P-999", "x": "AQAB", "y": "AQAB"}]}'),
            "curve (crv) must be one of",
            id="jwks ec unknown curve",
        ),
        pytest.param(
            jwt(jwks='{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AQAB"}]}'),
            "must be 32 bytes",
            id="jwks ed25519 short key",
        ),
        pytest.param(
            jwt(outputClaimToHeaders=[{"header": "x", "claim": ""}]),
            "outputClaimToHeaders header and claim value must be non-empty string",
            id="null claim value in outputClaimToHeader ",
        ),
        pytest.param(
            jwt(outputClaimToHeaders=[{"header": "", "claim": "sub"}]),
            "outputClaimToHeaders header and claim value must be non-empty string",
            id="null header value in outputClaimToHeader ",
        ),
        pytest.param(
            jwt(outputClaimToHeaders=[{"header": "abc%123", "claim": "sub"}]),
            "header name abc%123 is not a valid header name",
            id="invalid header value in outputClaimToHeader ",
        ),
        pytest.param(jwt(timeout="0.0001s"), "duration must be greater than 1ms", id="bad-timeout"),
    ],
)
def test_validate_request_authentication(spec: dict, error: str | None):
    check(validate("RequestAuthentication", spec), error)
