"""Istio's "Secure Gateways" task through the real ingress gateway, with the real curl.

The test is the certificate authority: it makes a root, server certificates for the
gateway's hosts (one as files on disk, others in Kubernetes Secrets named by
`credentialName`), a client certificate for MUTUAL, and a TLS backend that the gateway
passes connections through to by SNI. Every request is /usr/bin/curl with `--resolve` and
`--cacert`, and the certificate curl was served is read from its own report.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import pathlib
import re
import ssl
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.meshtest import MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(24)
BACKEND = f"{SUBNET}.150"  # the TLS server behind PASSTHROUGH, outside the mesh
CURL = "/usr/bin/curl"
HTTPS_PORT = 8443  # Gateway port 443, as the gateway listens without root
HTTP_PORT = 8080  # Gateway port 80


class Authority:
    """A root CA, and certificates and keys it signs, written as PEM files."""

    def __init__(self, folder: pathlib.Path, name: str) -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{name} Inc."),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.path = folder / f"{name}.ca.pem"
        self.path.write_bytes(self.pem)

    def issue(self, host: str, organization: str, *, client: bool = False) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for `host` (its CN and DNS SAN)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                        x509.NameAttribute(NameOID.COMMON_NAME, host),
                    ]
                )
            )
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def write(self, name: str, pem: bytes) -> pathlib.Path:
        path = self.folder / name
        path.write_bytes(pem)
        return path


class TlsBackend:
    """An HTTPS server outside the mesh (Istio's task uses nginx) with its own certificate."""

    def __init__(self, cert: pathlib.Path, key: pathlib.Path) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"Welcome to the TLS backend\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = http.server.ThreadingHTTPServer((BACKEND, 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _secret(name: str, data: dict[str, bytes], kind: str = "kubernetes.io/tls") -> str:
    values = "".join(f"  {key}: {_b64(value)}\n" for key, value in data.items())
    return (
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: istio-system}}\n"
        f"type: {kind}\ndata:\n{values}"
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    root = Authority(folder, "example.com")
    clients = Authority(folder, "clients.example.com")
    files = root.issue("files.example.com", "files Inc.")
    backend = root.issue("nginx.example.com", "backend Inc.")
    client = clients.issue("client.example.com", "client Inc.", client=True)
    return {
        "root": root,
        "clients": clients,
        "httpbin": root.issue("httpbin.example.com", "httpbin Inc."),
        "mutual": root.issue("mutual.example.com", "mutual Inc."),
        "files": (root.write("files.crt", files[0]), root.write("files.key", files[1])),
        "backend": (root.write("nginx.crt", backend[0]), root.write("nginx.key", backend[1])),
        "client": (root.write("client.crt", client[0]), root.write("client.key", client[1])),
    }


@pytest.fixture(scope="module")
def backend(pki):
    server = TlsBackend(*pki["backend"])
    yield server
    server.close()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, pki, backend):
    with MeshUnderTest(tmp_path_factory.mktemp("mesh"), SUBNET, heal=False) as mesh:
        config = tmp_path_factory.mktemp("config") / "secure-gateway.yaml"
        config.write_text(_config(pki, backend))
        mesh.apply(config)
        yield mesh


def _config(pki, backend) -> str:
    files_cert, files_key = pki["files"]
    httpbin_cert, httpbin_key = pki["httpbin"]
    mutual_cert, mutual_key = pki["mutual"]
    return "---\n".join(
        [
            _secret("httpbin-credential", {"tls.crt": httpbin_cert, "tls.key": httpbin_key}),
            # The task's generic Secret for MUTUAL: certificate, key and client CA in one.
            _secret(
                "mutual-credential",
                {"tls.crt": mutual_cert, "tls.key": mutual_key, "ca.crt": pki["clients"].pem},
                kind="Opaque",
            ),
            f"""apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata: {{name: mygateway, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [httpbin.example.com]
    tls: {{mode: SIMPLE, credentialName: httpbin-credential}}
  - port: {{number: 443, name: https-files, protocol: HTTPS}}
    hosts: [files.example.com]
    tls: {{mode: SIMPLE, serverCertificate: {files_cert}, privateKey: {files_key}}}
  - port: {{number: 443, name: https-mutual, protocol: HTTPS}}
    hosts: [mutual.example.com]
    tls: {{mode: MUTUAL, credentialName: mutual-credential}}
  - port: {{number: 443, name: https-missing, protocol: HTTPS}}
    hosts: [missing.example.com]
    tls: {{mode: SIMPLE, credentialName: no-such-credential}}
  - port: {{number: 443, name: tls-passthrough, protocol: TLS}}
    hosts: [nginx.example.com]
    tls: {{mode: PASSTHROUGH}}
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [httpbin.example.com]
    tls: {{httpsRedirect: true}}
""",
            """apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.example.com, files.example.com, mutual.example.com, missing.example.com]
  gateways: [mygateway]
  http:
  - match: [{uri: {prefix: /productpage}}]
    route:
    - destination: {host: productpage, port: {number: 9080}}
""",
            f"""apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: nginx, namespace: default}}
spec:
  hosts: [nginx.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  endpoints: [{{address: {BACKEND}, ports: {{tls: {backend.port}}}}}]
""",
            """apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: nginx, namespace: default}
spec:
  hosts: [nginx.example.com]
  gateways: [mygateway]
  tls:
  - match: [{port: 443, sniHosts: [nginx.example.com]}]
    route:
    - destination: {host: nginx.example.com, port: {number: 443}}
""",
        ]
    )


class Curl:
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.code = result.returncode
        self.body = result.stdout
        self.report = result.stderr

    @property
    def status(self) -> int | None:
        found = re.findall(r"^< HTTP/[\d.]+ (\d{3})", self.report, re.MULTILINE)
        return int(found[-1]) if found else None

    @property
    def subject(self) -> str:
        """The served certificate's subject, as curl prints it (`O=...; CN=...`)."""
        found = re.search(r"^\*\s+subject: (.*)$", self.report, re.MULTILINE)
        return found.group(1).strip() if found else ""

    @property
    def san_matched(self) -> bool:
        return "subjectAltName: host" in self.report and "matched cert's" in self.report

    def header(self, name: str) -> str:
        found = re.search(rf"^< {name}: (.*)$", self.report, re.MULTILINE | re.IGNORECASE)
        return found.group(1).strip() if found else ""


def _curl(mesh, pki, url: str, host: str, port: int, *extra: str) -> Curl:
    address = mesh.topology.gateway_address
    result = subprocess.run(
        [CURL, "-sS", "-v", "--max-time", "10", "--resolve", f"{host}:{port}:{address}",
         "--cacert", str(pki["root"].path), *extra, url],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    return Curl(result)


def _https(mesh, pki, host: str, *extra: str, path: str = "/productpage") -> Curl:
    return _curl(mesh, pki, f"https://{host}:{HTTPS_PORT}{path}", host, HTTPS_PORT, *extra)


def _eventually(check, timeout: float = 15.0):
    """`check()` until it returns something true (a push reaches Envoy's new connections
    a moment after the gateway acknowledges it); the last result either way."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def test_simple_tls_from_a_credential_serves_its_certificate(mesh, pki):
    reply = _https(mesh, pki, "httpbin.example.com")
    assert reply.code == 0, reply.report
    assert reply.status == 200
    assert "Simple Bookstore App" in reply.body  # the product page, through the mesh
    assert reply.subject == "O=httpbin Inc.; CN=httpbin.example.com"
    assert reply.san_matched
    # What the gateway's Envoy holds, as the operator sees it.
    listed = mesh.istioctl(
        "proxy-config", "secret", "istio-ingressgateway.istio-system", "-o", "json"
    )
    sans = [san for cert in json.loads(listed.stdout) for san in cert.get("subject_alt_names", [])]
    assert {"dns": "httpbin.example.com"} in sans


def test_simple_tls_from_files_serves_the_file_certificate(mesh, pki):
    reply = _https(mesh, pki, "files.example.com")
    assert reply.status == 200, reply.report
    assert reply.subject == "O=files Inc.; CN=files.example.com"


def test_a_rotated_secret_is_served_after_the_update(mesh, pki, tmp_path):
    cert, key = pki["root"].issue("httpbin.example.com", "rotated Inc.")
    update = tmp_path / "rotated.yaml"
    update.write_text(_secret("httpbin-credential", {"tls.crt": cert, "tls.key": key}))
    mesh.apply(update)

    def rotated() -> Curl | None:
        reply = _https(mesh, pki, "httpbin.example.com")
        return reply if reply.subject.startswith("O=rotated") else None

    reply = _eventually(rotated)
    assert reply is not None, "the gateway kept serving the old certificate"
    assert reply.status == 200
    assert reply.subject == "O=rotated Inc.; CN=httpbin.example.com"


def test_mutual_refuses_a_client_without_a_certificate_and_accepts_one_with(mesh, pki):
    refused = _https(mesh, pki, "mutual.example.com")
    assert refused.code != 0  # the handshake fails: the gateway asked for a certificate
    assert refused.status is None
    assert refused.subject == "O=mutual Inc.; CN=mutual.example.com"  # the server's, seen
    cert, key = pki["client"]
    accepted = _https(mesh, pki, "mutual.example.com", "--cert", str(cert), "--key", str(key))
    assert accepted.code == 0, accepted.report
    assert accepted.status == 200


def test_passthrough_reaches_the_tls_backend_by_sni(mesh, pki):
    reply = _https(mesh, pki, "nginx.example.com", path="/")
    assert reply.code == 0, reply.report
    assert reply.status == 200
    assert reply.body == "Welcome to the TLS backend\n"
    # TLS was not ended at the gateway: the certificate is the backend's own.
    assert reply.subject == "O=backend Inc.; CN=nginx.example.com"


def test_http_redirects_to_https(mesh, pki):
    reply = _curl(
        mesh,
        pki,
        f"http://httpbin.example.com:{HTTP_PORT}/productpage",
        "httpbin.example.com",
        HTTP_PORT,
        "-H",
        "Host: httpbin.example.com",
    )
    assert reply.status == 301, reply.report
    assert reply.header("location") == "https://httpbin.example.com/productpage"


def test_a_missing_secret_is_reported_and_leaves_the_other_servers_serving(mesh, pki, tmp_path):
    # No certificate for the server whose Secret does not exist: no chain matches its SNI.
    missing = _https(mesh, pki, "missing.example.com")
    assert missing.code != 0
    assert missing.status is None
    assert _https(mesh, pki, "httpbin.example.com").status == 200
    # Bookinfo's own gateway (port 80, every host) is untouched.
    assert mesh.page().status == 200
    analysis = mesh.istioctl("analyze", "-n", "default", check=False)
    assert 'Referenced credentialName not found: "no-such-credential"' in analysis.stdout
    assert "[IST0101] (Gateway mygateway.default" in analysis.stdout
    assert analysis.returncode != 0
    # Once the Secret exists, the server is served with it.
    cert, key = pki["root"].issue("missing.example.com", "found Inc.")
    created = tmp_path / "found.yaml"
    created.write_text(_secret("no-such-credential", {"tls.crt": cert, "tls.key": key}))
    mesh.apply(created)

    def served() -> Curl | None:
        reply = _https(mesh, pki, "missing.example.com")
        return reply if reply.status == 200 else None

    reply = _eventually(served)
    assert reply is not None, "the server stayed out after its Secret was created"
    assert reply.subject == "O=found Inc.; CN=missing.example.com"
    analysis = mesh.istioctl("analyze", "-n", "default", check=False)
    assert "credentialName" not in analysis.stdout
