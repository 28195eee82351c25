"""Golden files for every generator: CDS, EDS, LDS and RDS of representative proxies.

Each scenario is a mesh (Bookinfo with some of its samples, or config written here) and the
proxies to configure; its golden file (`testdata/<scenario>.json`) holds, per proxy and type,
exactly what the generators return, as Envoy's JSON. EDS asks for the EDS clusters CDS
returned and RDS for the route names LDS returned, as Envoy does. A change to generation
shows up as a diff of these files; when it is meant, refresh them and read the diff:

    REFRESH_GOLDEN=1 .venv/bin/pytest pilot/networking/golden_test.py
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from pilot.model.push_context import PushContext
from pilot.networking import generator, jwt
from pilot.networking.testing import (
    FakeProxy,
    assert_golden,
    bookinfo_push,
    generate_all,
    sidecar,
    workload_entries,
)
from pkg.config import loader
from pkg.config.mesh import parse_mesh_config

GATEWAY = FakeProxy("router", "127.0.1.1", "istio-system", {"istio": "ingressgateway"})
WITH_SDS = {"SDS": "true"}


def _sds(proxy: FakeProxy) -> FakeProxy:
    return dataclasses.replace(proxy, metadata=WITH_SDS)


EXTRA = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: external-api, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: https, protocol: TLS}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: passthrough, namespace: default}
spec:
  hosts: [legacy.example.com]
  resolution: NONE
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: ratings-only, namespace: default}
spec:
  workloadSelector: {labels: {app: ratings}}
  egress: [{hosts: ["./details.default.svc.cluster.local", "*/api.example.com"]}]
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: details-pool, namespace: default}
spec:
  host: details
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 10}, http: {http1MaxPendingRequests: 5, maxRetries: 2}}
    outlierDetection: {consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 30s}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: details, namespace: default}
spec:
  hosts: [details]
  http:
  - match: [{uri: {prefix: /old}, method: {exact: GET}}]
    redirect: {uri: /new, redirectCode: 308}
  - match: [{sourceLabels: {app: productpage}}]
    rewrite: {uri: /details/}
    timeout: 2s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "gateway-error,503"}
    headers: {request: {set: {x-from: productpage}}}
    route: [{destination: {host: details}}]
    mirror: {host: ratings}
  - route: [{destination: {host: details}}]
"""

MTLS = """
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: reviews-strict, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: ratings-from-reviews, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-reviews]}}]
    to: [{operation: {methods: [GET]}}]
"""


# A real RSA modulus: the store refuses keys Envoy could not load.
_MODULUS = json.loads(jwt.UNFETCHED_JWKS)["keys"][0]["n"]

# End users: a JWT at the gateway (keys Pilot fetched) and at productpage (inline keys),
# with productpage's policy on the request principal and a claim.
JWT = """
apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata: {name: ingress-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - {issuer: https://issuer.test, jwksUri: "https://issuer.test/jwks.json", forwardOriginalToken: true}
---
apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata: {name: productpage-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  jwtRules:
  - issuer: https://issuer.test
    jwks: '{"keys": [{"kty": "RSA", "kid": "k", "e": "AQAB", "n": "MODULUS"}]}'
    fromHeaders: [{name: x-jwt-assertion}]
    outputPayloadToHeader: x-jwt-payload
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  rules:
  - from: [{source: {requestPrincipals: ["https://issuer.test/alice"]}}]
    when: [{key: "request.auth.claims[groups]", values: [admins]}]
""".replace("MODULUS", _MODULUS)
FETCHED_JWKS = {
    "https://issuer.test/jwks.json": jwt.UNFETCHED_JWKS.replace("unfetched", "fetched"),
}


# Captured sidecars (iptables): a TCP service with an address shifted 80/20 by a tcp route,
# an external TLS host told by SNI, an external HTTP host, and a workload held to
# REGISTRY_ONLY by its Sidecar.
CAPTURED = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: [tcp-echo.default.svc.cluster.local]
  addresses: [10.96.0.20]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  endpoints:
  - {address: 127.0.1.20, labels: {app: tcp-echo, version: v1}}
  - {address: 127.0.1.21, labels: {app: tcp-echo, version: v2}}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: tcp-echo, namespace: default}
spec:
  host: tcp-echo
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: [tcp-echo]
  tcp:
  - match: [{port: 9000}]
    route:
    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v1}, weight: 80}
    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v2}, weight: 20}
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: external-tls, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: external-http, namespace: default}
spec:
  hosts: [httpbin.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.1.30}]
---
apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: ratings-registry-only, namespace: default}
spec:
  workloadSelector: {labels: {app: ratings}}
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""


def _captured(proxy: FakeProxy) -> FakeProxy:
    return dataclasses.replace(proxy, metadata={**proxy.metadata, "INTERCEPTION_MODE": "REDIRECT"})


def _mtls_entries() -> list[Any]:
    entries = []
    for entry in workload_entries():
        data = entry.to_dict()
        data["spec"]["labels"]["security.istio.io/tlsMode"] = "istio"
        entries.append(loader.load_object(data, source="golden"))
    return entries


def _with_mesh(push: PushContext, text: str) -> PushContext:
    mesh = dataclasses.replace(push.mesh, mesh_config=parse_mesh_config(text))
    return dataclasses.replace(push, mesh=mesh, memo={})


SCENARIOS = {
    "bookinfo": lambda: (
        bookinfo_push(),
        {"productpage-v1": sidecar("productpage-v1"), "gateway": GATEWAY},
    ),
    "bookinfo-routing": lambda: (
        bookinfo_push(
            "destination-rule-all",
            "bookinfo-gateway",
            "virtual-service-reviews-test-v2",
            "virtual-service-reviews-80-20",
            "virtual-service-ratings-test-delay",
        ),
        {
            "productpage-v1": sidecar("productpage-v1"),
            "reviews-v2": sidecar("reviews-v2"),
            "gateway": GATEWAY,
        },
    ),
    "mixed": lambda: (
        bookinfo_push("destination-rule-all", extra=loader.load_text(EXTRA, source="golden")),
        {"productpage-v1": sidecar("productpage-v1"), "ratings-v1": sidecar("ratings-v1")},
    ),
    "jwt": lambda: (
        dataclasses.replace(
            bookinfo_push("bookinfo-gateway", extra=loader.load_text(JWT, source="golden")),
            jwks=FETCHED_JWKS,
        ),
        {"productpage-v1": sidecar("productpage-v1"), "gateway": GATEWAY},
    ),
    "captured": lambda: (
        bookinfo_push(
            "virtual-service-reviews-80-20",
            extra=loader.load_text(CAPTURED, source="golden"),
        ),
        {
            "productpage-v1": _captured(sidecar("productpage-v1")),
            "ratings-v1": _captured(sidecar("ratings-v1")),
        },
    ),
    "captured-mtls": lambda: (
        bookinfo_push(
            "destination-rule-all-mtls",
            extra=[*_mtls_entries(), *loader.load_text(MTLS, source="golden")],
        ),
        {
            "reviews-v1": _captured(_sds(sidecar("reviews-v1"))),
            "ratings-v1": _captured(_sds(sidecar("ratings-v1"))),
        },
    ),
    # Istio's access log, both encodings, on HTTP connection managers and TCP proxies.
    "access-log-text": lambda: (
        _with_mesh(
            bookinfo_push("bookinfo-gateway", extra=loader.load_text(CAPTURED, source="golden")),
            "accessLogFile: /dev/stdout\n",
        ),
        {"productpage-v1": _captured(sidecar("productpage-v1")), "gateway": GATEWAY},
    ),
    "access-log-json": lambda: (
        _with_mesh(
            bookinfo_push(),
            "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n"
            'accessLogFormat: \'{"code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%"}\'\n',
        ),
        {"productpage-v1": sidecar("productpage-v1")},
    ),
    "mtls": lambda: (
        bookinfo_push(
            "destination-rule-all-mtls",
            extra=[*_mtls_entries(), *loader.load_text(MTLS, source="golden")],
        ),
        {
            "productpage-v1": _sds(sidecar("productpage-v1")),
            "reviews-v1": _sds(sidecar("reviews-v1")),
            "ratings-v1": _sds(sidecar("ratings-v1")),
        },
    ),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_generated_config_matches_its_golden_file(scenario: str) -> None:
    push, proxies = SCENARIOS[scenario]()
    assert_golden(scenario, {name: generate_all(p, push) for name, p in proxies.items()})


def test_a_push_generates_the_same_from_its_caches():
    # The second proxy of a push reuses what the first built; its config is the same as
    # a fresh push's.
    push, proxies = SCENARIOS["bookinfo-routing"]()
    first = {name: generate_all(p, push) for name, p in proxies.items()}
    again = {name: generate_all(p, push) for name, p in proxies.items()}
    fresh_push, _ = SCENARIOS["bookinfo-routing"]()
    fresh = {name: generate_all(p, fresh_push) for name, p in proxies.items()}
    assert first == again == fresh
    assert generator.GENERATORS  # every type above is one of these
