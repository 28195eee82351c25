"""Gateway TLS: the listeners, routes and SDS secrets Pilot makes of Gateway `tls` settings."""

from __future__ import annotations

import base64

from google.protobuf import json_format

from pilot.networking import generator
from pilot.networking.testing import FakeProxy, bookinfo_push
from pkg.config import loader

GATEWAY = FakeProxy("router", "127.0.1.1", "istio-system", {"istio": "ingressgateway"})


def _load(text):
    return loader.load_text(text, source="test")


def _secret(name, data, namespace="istio-system", kind="kubernetes.io/tls"):
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return loader.load_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": kind,
            "data": encoded,
        },
        source="test",
    )


GATEWAYS = """
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata: {name: mygateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-files, protocol: HTTPS}
    hosts: [files.example.com]
    tls: {mode: SIMPLE, serverCertificate: /certs/files.crt, privateKey: /certs/files.key}
  - port: {number: 443, name: https-secret, protocol: HTTPS}
    hosts: [secret.example.com]
    tls: {mode: SIMPLE, credentialName: secret-credential}
  - port: {number: 443, name: https-mutual, protocol: HTTPS}
    hosts: [mutual.example.com]
    tls: {mode: MUTUAL, credentialName: mutual-credential}
  - port: {number: 443, name: https-missing, protocol: HTTPS}
    hosts: [missing.example.com]
    tls: {mode: SIMPLE, credentialName: no-such-credential}
  - port: {number: 443, name: https-mutual-files, protocol: HTTPS}
    hosts: [mutual-files.example.com]
    tls:
      mode: MUTUAL
      serverCertificate: /certs/m.crt
      privateKey: /certs/m.key
      caCertificates: /certs/ca.crt
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [files.example.com]
    tls: {httpsRedirect: true}
  - port: {number: 443, name: tls-passthrough, protocol: TLS}
    hosts: [nginx.example.com]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [files.example.com, secret.example.com, mutual.example.com, mutual-files.example.com]
  gateways: [istio-system/mygateway]
  http:
  - route:
    - destination: {host: productpage, port: {number: 9080}}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: nginx, namespace: default}
spec:
  hosts: [nginx.example.com]
  gateways: [istio-system/mygateway]
  tls:
  - match:
    - port: 443
      sniHosts: [nginx.example.com]
    route:
    - destination: {host: ratings, port: {number: 9080}}
"""

SECRETS = [
    _secret("secret-credential", {"tls.crt": "SECRET CERT", "tls.key": "SECRET KEY"}),
    # A generic Secret with its CA in `<name>-cacert`, as Istio's task makes them.
    _secret("mutual-credential", {"cert": "MUTUAL CERT", "key": "MUTUAL KEY"}, kind="Opaque"),
    _secret("mutual-credential-cacert", {"cacert": "MUTUAL CA"}, kind="Opaque"),
    # Same names in another namespace: never the gateway's.
    _secret("no-such-credential", {"tls.crt": "X", "tls.key": "Y"}, namespace="default"),
]


def _dicts(resources):
    return {
        name: json_format.MessageToDict(message, preserving_proto_field_name=True)
        for name, message in resources
    }


def _push(extra_secrets=()):
    return bookinfo_push(extra=[*_load(GATEWAYS), *SECRETS, *extra_secrets])


def _chains(listener):
    """Filter chains by the SNI names they match ("*" for none)."""
    return {
        ",".join(c.get("filter_chain_match", {}).get("server_names", [])) or "*": c
        for c in listener["filter_chains"]
    }


def _tls(chain):
    return chain["transport_socket"]["typed_config"]


def test_servers_on_one_port_become_filter_chains_by_sni():
    listeners = _dicts(generator.build_listeners(GATEWAY, _push(), []))
    assert sorted(listeners) == ["0.0.0.0_8080", "0.0.0.0_8443"]
    https = listeners["0.0.0.0_8443"]
    assert [f["name"] for f in https["listener_filters"]] == [
        "envoy.filters.listener.tls_inspector"
    ]
    chains = _chains(https)
    # The server whose Secret does not exist (in the gateway's namespace) is left out.
    assert sorted(chains) == [
        "files.example.com",
        "mutual-files.example.com",
        "mutual.example.com",
        "nginx.example.com",
        "secret.example.com",
    ]
    hcm = chains["secret.example.com"]["filters"][0]["typed_config"]
    assert hcm["rds"]["route_config_name"] == "https.443.https-secret.mygateway.istio-system"


def test_simple_from_files_and_from_a_credential():
    chains = _chains(_dicts(generator.build_listeners(GATEWAY, _push(), []))["0.0.0.0_8443"])
    files = _tls(chains["files.example.com"])
    assert files["common_tls_context"]["tls_certificates"] == [
        {
            "certificate_chain": {"filename": "/certs/files.crt"},
            "private_key": {"filename": "/certs/files.key"},
        }
    ]
    assert "require_client_certificate" not in files
    secret = _tls(chains["secret.example.com"])["common_tls_context"]
    (sds,) = secret["tls_certificate_sds_secret_configs"]
    assert sds["name"] == "kubernetes://secret-credential"
    assert "ads" in sds["sds_config"]  # on the gateway's own xDS stream, from Pilot


def test_mutual_requires_a_client_certificate_signed_by_the_ca():
    chains = _chains(_dicts(generator.build_listeners(GATEWAY, _push(), []))["0.0.0.0_8443"])
    mutual = _tls(chains["mutual.example.com"])
    assert mutual["require_client_certificate"] is True
    validation = mutual["common_tls_context"]["combined_validation_context"]
    assert validation["validation_context_sds_secret_config"]["name"] == (
        "kubernetes://mutual-credential-cacert"
    )
    files = _tls(chains["mutual-files.example.com"])
    assert files["require_client_certificate"] is True
    assert files["common_tls_context"]["validation_context"]["trusted_ca"] == {
        "filename": "/certs/ca.crt"
    }


def test_mutual_without_a_client_ca_is_left_out():
    lone = _secret("mutual-credential", {"cert": "C", "key": "K"}, kind="Opaque")
    secrets = [s for s in SECRETS if not s.metadata.name.startswith("mutual")] + [lone]
    push = bookinfo_push(extra=[*_load(GATEWAYS), *secrets])
    chains = _chains(_dicts(generator.build_listeners(GATEWAY, push, []))["0.0.0.0_8443"])
    assert "mutual.example.com" not in chains
    assert "secret.example.com" in chains


def test_passthrough_forwards_by_sni_without_ending_tls():
    chains = _chains(_dicts(generator.build_listeners(GATEWAY, _push(), []))["0.0.0.0_8443"])
    chain = chains["nginx.example.com"]
    assert "transport_socket" not in chain
    (tcp,) = chain["filters"]
    assert tcp["name"] == "envoy.filters.network.tcp_proxy"
    assert tcp["typed_config"]["cluster"] == "outbound|9080||ratings.default.svc.cluster.local"


def test_https_redirect_and_https_routes():
    push = _push()
    tables = _dicts(generator.build_routes(GATEWAY, push, []))
    assert sorted(tables) == [
        "http.8080",
        "https.443.https-files.mygateway.istio-system",
        "https.443.https-missing.mygateway.istio-system",
        "https.443.https-mutual-files.mygateway.istio-system",
        "https.443.https-mutual.mygateway.istio-system",
        "https.443.https-secret.mygateway.istio-system",
    ]
    (redirect,) = tables["http.8080"]["virtual_hosts"]
    assert redirect["domains"] == ["files.example.com", "files.example.com:8080"]
    assert redirect["require_tls"] == "ALL"
    (host,) = tables["https.443.https-secret.mygateway.istio-system"]["virtual_hosts"]
    assert host["domains"] == ["secret.example.com", "secret.example.com:8443"]
    assert "require_tls" not in host
    assert host["routes"][0]["route"]["cluster"] == (
        "outbound|9080||productpage.default.svc.cluster.local"
    )


def test_sds_serves_the_gateway_its_credentials_and_nothing_else():
    push = _push()
    wanted = [
        "kubernetes://secret-credential",
        "kubernetes://mutual-credential",
        "kubernetes://mutual-credential-cacert",
        "kubernetes://no-such-credential",  # only in another namespace
        "default",  # the node agent's, not Pilot's
    ]
    secrets = _dicts(generator.build_secrets(GATEWAY, push, wanted))
    assert sorted(secrets) == sorted(wanted[:3])
    tls = secrets["kubernetes://secret-credential"]["tls_certificate"]
    assert base64.b64decode(tls["certificate_chain"]["inline_bytes"]) == b"SECRET CERT"
    assert base64.b64decode(tls["private_key"]["inline_bytes"]) == b"SECRET KEY"
    generic = secrets["kubernetes://mutual-credential"]["tls_certificate"]
    assert base64.b64decode(generic["private_key"]["inline_bytes"]) == b"MUTUAL KEY"
    ca = secrets["kubernetes://mutual-credential-cacert"]["validation_context"]["trusted_ca"]
    assert base64.b64decode(ca["inline_bytes"]) == b"MUTUAL CA"
    # A sidecar, and a Secret no Gateway names, get nothing.
    sidecar = FakeProxy("sidecar", "127.0.1.2", "istio-system")
    assert not list(generator.build_secrets(sidecar, push, wanted))
    stray = _secret("stray", {"tls.crt": "A", "tls.key": "B"})
    assert not list(generator.build_secrets(GATEWAY, _push([stray]), ["kubernetes://stray"]))


def test_the_ca_may_sit_in_the_credential_itself():
    combined = _secret("mutual-credential", {"tls.crt": "C", "tls.key": "K", "ca.crt": "CA"})
    secrets = [s for s in SECRETS if not s.metadata.name.startswith("mutual")] + [combined]
    push = bookinfo_push(extra=[*_load(GATEWAYS), *secrets])
    found = _dicts(
        generator.build_secrets(GATEWAY, push, ["kubernetes://mutual-credential-cacert"])
    )
    ca = found["kubernetes://mutual-credential-cacert"]["validation_context"]["trusted_ca"]
    assert base64.b64decode(ca["inline_bytes"]) == b"CA"


def test_plain_http_gateways_are_as_before():
    push = bookinfo_push("bookinfo-gateway")
    listeners = _dicts(generator.build_listeners(GATEWAY, push, []))
    assert list(listeners) == ["0.0.0.0_8080"]
    assert "listener_filters" not in listeners["0.0.0.0_8080"]


TCP_SHIFT = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tcp-echo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
  - port: {number: 31401, name: tcp-unrouted, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [tcp-echo-gateway]
  tcp:
  - match: [{port: 31400}]
    route:
    - {destination: {host: reviews, port: {number: 9080}, subset: v1}, weight: 80}
    - {destination: {host: reviews, port: {number: 9080}, subset: v2}, weight: 20}
"""


def test_a_tcp_server_forwards_connections_by_the_bound_tcp_route_weights():
    push = bookinfo_push("destination-rule-all", extra=_load(TCP_SHIFT))
    found = _dicts(generator.build_listeners(GATEWAY, push, []))
    # 31401 has no tcp route bound to it: no listener, as a port with nowhere to go.
    assert "0.0.0.0_31401" not in found
    (chain,) = found["0.0.0.0_31400"]["filter_chains"]
    (tcp,) = chain["filters"]
    assert tcp["name"] == "envoy.filters.network.tcp_proxy"
    assert tcp["typed_config"]["weighted_clusters"]["clusters"] == [
        {"name": "outbound|9080|v1|reviews.default.svc.cluster.local", "weight": 80},
        {"name": "outbound|9080|v2|reviews.default.svc.cluster.local", "weight": 20},
    ]
    # No RDS table for a TCP port.
    assert not [
        name for name in _dicts(generator.build_routes(GATEWAY, push, [])) if "31400" in name
    ]
