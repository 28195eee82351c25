"""End-user authentication: Istio's "JWT authentication" task against a local issuer.

The test is the issuer: it makes an RSA key pair, signs tokens with it (RS256, by hand, no
JWT library), and serves the public key as a JWKS on loopback, which Pilot fetches and puts
into the Envoys' config. Requests go through the real ingress gateway and sidecars.
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.meshtest import MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(23)
ISSUER = "https://issuer.mesh.test"
SUBJECT = "alice"
KID = "test-key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """An RSA key pair, tokens signed with it, and its JWKS served over HTTP on loopback."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": KID,
            "e": _b64(numbers.e.to_bytes(3, "big")),
            "n": _b64(numbers.n.to_bytes(256, "big")),
        }
        self.jwks = json.dumps({"keys": [jwk]})
        self.requests = 0
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests += 1
                body = issuer.jwks.encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def token(self, key: rsa.RSAPrivateKey | None = None, **claims: object) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "sub": SUBJECT, "iat": now, "exp": now + 3600, **claims}
        header = {"alg": "RS256", "typ": "JWT", "kid": KID}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = (key or self.key).sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64(signature)}"


@pytest.fixture(scope="module")
def issuer():
    issuer = Issuer()
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with MeshUnderTest(tmp_path_factory.mktemp("mesh"), SUBNET, heal=False) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def tokens(issuer):
    """Every kind of token the task tries, by name."""
    now = int(time.time())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "valid": issuer.token(),
        "admin": issuer.token(groups=["admins", "users"]),
        "other-user": issuer.token(sub="bob"),
        "bad-signature": issuer.token(key=stranger),
        "expired": issuer.token(iat=now - 7200, exp=now - 3600),
        "wrong-issuer": issuer.token(iss="https://elsewhere.test"),
        "garbage": "not.a.jwt",
    }


def _page(mesh, token=None, *, header="Authorization", param=None, path="/productpage"):
    """The product page through the ingress gateway; the token in a header or parameter."""
    url = f"http://{mesh.topology.gateway_address}:8080{path}"
    headers = {}
    if token is not None and param:
        url += f"?{param}={token}"
    elif token is not None:
        headers[header] = f"Bearer {token}" if header == "Authorization" else token
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def _statuses(mesh, tokens, names, **how):
    return {name: _page(mesh, tokens.get(name), **how)[0] for name in names}


def _expect(mesh, tokens, expected, timeout=10.0, **how):
    """Statuses for each named token, until they are `expected` (at most `timeout`).

    Pilot's push is acknowledged before every connection has moved: the gateway's pooled
    connections to a sidecar keep the old listener config until Envoy drains them, so the
    first request or two after a change may still see the old filters.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = _statuses(mesh, tokens, expected, **how)
        if seen == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == expected


def _yaml(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _request_authn(name, namespace, labels, rule):
    return (
        "apiVersion: security.istio.io/v1beta1\nkind: RequestAuthentication\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        f"spec:\n  selector: {{matchLabels: {labels}}}\n  jwtRules:\n  - {rule}\n"
    )


def _productpage_authn(issuer):
    return _request_authn(
        "productpage-jwt",
        "default",
        "{app: productpage}",
        f"{{issuer: {ISSUER}, jwksUri: {issuer.uri}}}",
    )


def _allow(name, rule):
    return (
        "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        f"spec:\n  selector: {{matchLabels: {{app: productpage}}}}\n  action: ALLOW\n"
        f"  rules:\n  - {rule}\n"
    )


EVERY = ("missing", "valid", "bad-signature", "expired", "wrong-issuer", "garbage")


def test_request_authentication_alone_refuses_bad_tokens_and_lets_no_token_pass(
    mesh, issuer, tokens, tmp_path
):
    _expect(mesh, tokens, dict.fromkeys(EVERY, 200))  # nothing enforced yet
    policy = _yaml(tmp_path, "authn", _productpage_authn(issuer))
    mesh.apply(policy)
    try:
        assert issuer.requests >= 1  # Pilot fetched the keys; Envoy never asks the issuer
        _expect(
            mesh,
            tokens,
            {
                "missing": 200,
                "valid": 200,
                "bad-signature": 401,
                "expired": 401,
                "wrong-issuer": 401,
                "garbage": 401,
            },
        )
        _, body = _page(mesh, tokens["valid"])
        assert "William Shakespeare" in body  # the whole page, through every sidecar
        assert _page(mesh, tokens["expired"])[1] == "Jwt is expired"
    finally:
        mesh.delete(policy)
    _expect(mesh, tokens, {"bad-signature": 200})


def test_a_request_principal_is_required_by_authorization_policy(mesh, issuer, tokens, tmp_path):
    authn = _yaml(tmp_path, "authn", _productpage_authn(issuer))
    authz = _yaml(
        tmp_path,
        "authz",
        _allow("require-jwt", f'from: [{{source: {{requestPrincipals: ["{ISSUER}/{SUBJECT}"]}}}}]'),
    )
    mesh.apply(authn, authz)
    try:
        _expect(
            mesh,
            tokens,
            {
                "missing": 403,
                "valid": 200,
                "other-user": 403,  # verified, but not the principal the policy names
                "bad-signature": 401,
                "expired": 401,
            },
        )
        assert "RBAC" in _page(mesh)[1]
        # Any authenticated user: requestPrincipals ["*"].
        mesh.apply(
            _yaml(
                tmp_path,
                "authz",
                _allow("require-jwt", 'from: [{source: {requestPrincipals: ["*"]}}]'),
            )
        )
        _expect(
            mesh,
            tokens,
            {
                "missing": 403,
                "valid": 200,
                "other-user": 200,
            },
        )
    finally:
        mesh.delete(authn, authz)


def test_a_claim_condition_lets_only_tokens_with_the_claim_through(mesh, issuer, tokens, tmp_path):
    authn = _yaml(tmp_path, "authn", _productpage_authn(issuer))
    authz = _yaml(
        tmp_path,
        "authz",
        _allow(
            "require-admins",
            'from: [{source: {requestPrincipals: ["*"]}}]\n'
            '    when: [{key: "request.auth.claims[groups]", values: [admins]}]',
        ),
    )
    mesh.apply(authn, authz)
    try:
        _expect(
            mesh,
            tokens,
            {
                "missing": 403,
                "valid": 403,  # a valid token without the groups claim
                "admin": 200,
            },
        )
    finally:
        mesh.delete(authn, authz)


def test_the_gateway_checks_tokens_from_its_own_locations_with_inline_keys(
    mesh, issuer, tokens, tmp_path
):
    # Inline `jwks` (no fetch), the token in a custom header or a query parameter, and the
    # verified payload passed on to productpage, whose policy asks for that header.
    rule = (
        f"{{issuer: {ISSUER}, jwks: '{issuer.jwks}', fromHeaders: [{{name: x-jwt-assertion}}], "
        "fromParams: [token], outputPayloadToHeader: x-jwt-payload}"
    )
    authn = _yaml(
        tmp_path,
        "gateway-authn",
        _request_authn("ingress-jwt", "istio-system", "{istio: ingressgateway}", rule),
    )
    authz = _yaml(
        tmp_path,
        "payload",
        _allow("needs-payload", 'when: [{key: "request.headers[x-jwt-payload]", values: ["*"]}]'),
    )
    mesh.apply(authn, authz)
    try:
        header = {"header": "x-jwt-assertion"}
        _expect(
            mesh,
            tokens,
            {
                "missing": 403,  # passes the gateway, but productpage wants the payload header
                "valid": 200,
                "bad-signature": 401,
            },
            **header,
        )
        param = {"param": "token"}
        _expect(
            mesh,
            tokens,
            {
                "valid": 200,
                "expired": 401,
            },
            **param,
        )
        # Authorization is not one of this rule's locations: its token is not looked at.
        _expect(mesh, tokens, {"bad-signature": 403})
    finally:
        mesh.delete(authn, authz)


def test_forward_original_token_lets_the_next_hop_check_it_again(mesh, issuer, tokens, tmp_path):
    def gateway(forward: bool) -> str:
        rule = f"{{issuer: {ISSUER}, jwksUri: {issuer.uri}, forwardOriginalToken: {str(forward).lower()}}}"
        return _request_authn("ingress-jwt", "istio-system", "{istio: ingressgateway}", rule)

    authn = _yaml(tmp_path, "authn", _productpage_authn(issuer))
    authz = _yaml(
        tmp_path,
        "authz",
        _allow("require-jwt", 'from: [{source: {requestPrincipals: ["*"]}}]'),
    )
    at_gateway = _yaml(tmp_path, "gateway-authn", gateway(forward=True))
    mesh.apply(authn, authz, at_gateway)
    try:
        _expect(mesh, tokens, {"valid": 200, "expired": 401})
        # Without forwarding, the gateway takes the token off: productpage sees no user.
        mesh.apply(_yaml(tmp_path, "gateway-authn", gateway(forward=False)))
        _expect(mesh, tokens, {"valid": 403, "expired": 401})
    finally:
        mesh.delete(authn, authz, at_gateway)


def test_an_unreachable_jwks_uri_refuses_tokens_and_pilot_says_why(mesh, issuer, tokens, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/jwks.json"
    authn = _yaml(
        tmp_path,
        "authn",
        _request_authn(
            "productpage-jwt",
            "default",
            "{app: productpage}",
            f"{{issuer: {ISSUER}, jwksUri: {closed}}}",
        ),
    )
    mesh.apply(authn)
    try:
        _expect(mesh, tokens, {"missing": 200, "valid": 401})
        assert f"jwks: fetching {closed} failed" in mesh.log("pilot-discovery")
        # Pilot goes on serving: a good policy after the bad one is pushed and enforced.
        mesh.apply(_yaml(tmp_path, "authn", _productpage_authn(issuer)))
        _expect(mesh, tokens, {"valid": 200, "expired": 401})
    finally:
        mesh.delete(authn)


def test_the_gateway_routes_on_a_claim_of_the_verified_token(mesh, issuer, tokens, tmp_path):
    # Bookinfo's gateway VirtualService with one more route first: admins get an answer of
    # their own. Claims exist only once jwt_authn has verified a token.
    rule = f"{{issuer: {ISSUER}, jwksUri: {issuer.uri}}}"
    authn = _yaml(
        tmp_path,
        "gateway-authn",
        _request_authn("ingress-jwt", "istio-system", "{istio: ingressgateway}", rule),
    )
    routes = _yaml(
        tmp_path,
        "claim-routes",
        "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\n"
        "metadata: {name: bookinfo, namespace: default}\n"
        "spec:\n  hosts: ['*']\n  gateways: [bookinfo-gateway]\n  http:\n"
        "  - match: [{uri: {exact: /productpage}, headers: "
        '{"@request.auth.claims.groups": {exact: admins}}}]\n'
        "    directResponse: {status: 200, body: {string: admins only}}\n"
        "  - match: [{uri: {exact: /productpage}}]\n"
        "    route: [{destination: {host: productpage, port: {number: 9080}}}]\n",
    )
    mesh.apply(authn, routes)
    try:
        deadline = time.monotonic() + 10
        while True:
            bodies = {name: _page(mesh, tokens.get(name)) for name in ("missing", "valid", "admin")}
            if bodies["admin"][1] == "admins only" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert bodies["admin"] == (200, "admins only")
        for name in ("missing", "valid"):  # no token, or a token without the claim
            assert bodies[name][0] == 200, name
            assert "William Shakespeare" in bodies[name][1], name
        assert _page(mesh, tokens["expired"])[0] == 401
    finally:
        mesh.delete(authn)
        mesh.apply("bookinfo-gateway")
