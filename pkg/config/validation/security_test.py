"""Security validators, driven through the loader."""

from __future__ import annotations

import pytest
import yaml

from pkg.config import loader


def load(kind: str, spec: dict):
    doc = {
        "apiVersion": "security.istio.io/v1beta1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    }
    return loader.load_text(yaml.safe_dump(doc))


def problems(kind: str, spec: dict) -> list[str]:
    with pytest.raises(loader.LoadError) as caught:
        load(kind, spec)
    return [str(p) for e in caught.value.errors for p in e.problems]


def test_peer_authentication():
    (strict,) = load("PeerAuthentication", {"mtls": {"mode": "STRICT"}})
    assert strict.spec.mtls.mode != 0
    assert problems("PeerAuthentication", {"portLevelMtls": {"9080": {"mode": "DISABLE"}}}) == [
        "spec.portLevelMtls: port-level mTLS needs a workload selector"
    ]


def test_authorization_policy():
    spec = {
        "selector": {"matchLabels": {"app": "productpage"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [
                    {"source": {"principals": ["cluster.local/ns/default/sa/bookinfo-gateway"]}}
                ],
                "to": [{"operation": {"methods": ["GET"], "paths": ["/productpage"]}}],
                "when": [{"key": "request.headers[end-user]", "values": ["jason"]}],
            }
        ],
    }
    (policy,) = load("AuthorizationPolicy", spec)
    assert list(policy.spec.rules[0].to[0].operation.methods) == ["GET"]
    bad = {
        "rules": [
            {
                "to": [{"operation": {"methods": ["FETCH"], "paths": ["productpage"]}}],
                "when": [{"key": "k"}],
            }
        ]
    }
    assert problems("AuthorizationPolicy", bad) == [
        "spec.rules[0].to[0].operation.methods[0]: 'FETCH' is not an HTTP method",
        "spec.rules[0].to[0].operation.paths[0]: 'productpage' must start with '/' or '*'",
        "spec.rules[0].when[0]: a condition needs values or notValues",
    ]


def test_request_authentication():
    assert problems("RequestAuthentication", {"jwtRules": [{"jwksUri": "ftp://x"}]}) == [
        "spec.jwtRules[0].issuer: a JWT rule needs an issuer",
        "spec.jwtRules[0].jwksUri: 'ftp://x' is not an http(s) URL",
    ]
