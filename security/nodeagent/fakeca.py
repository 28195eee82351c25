"""Test support: a CA made with `cryptography`, in memory or served over gRPC with TLS.

- `FakeCa`: a root (optionally an intermediate) that signs CSRs as Istio's CA does (SPIFFE URI
  SAN from the CSR, leaf first and root last); a `Signer` itself, so the secret cache can use
  it with no sockets; can be told to fail, and can switch to a new root (a plugged-in root).
- `FakeCaServer`: that CA behind `istio.v1.auth.IstioCertificateService` on 127.0.0.1 with TLS
  and a bearer token check; stops and restarts on the same port (a CA outage).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import logging

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.security.v1alpha1 import ca_pb2, ca_pb2_grpc
from security.nodeagent import keys
from security.nodeagent.caclient import CaError
from security.nodeagent.clock import Clock, SystemClock

log = logging.getLogger("security.nodeagent.fakeca")

TEST_TOKEN = "test-token"
ROOT_LIFETIME = 10 * 365 * 86400.0


def _time(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclasses.dataclass(frozen=True)
class Authority:
    """A CA key and certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return _pem(self.certificate)


def _authority(name: str, now: float, issuer: Authority | None = None) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "istio-py test"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    signing_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_time(now - 3600))
        .not_valid_after(_time(now + ROOT_LIFETIME))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Authority(key, builder.sign(signing_key, hashes.SHA256()))


class FakeCa:
    """Signs CSRs with a test root (or an intermediate under it). A `Signer`."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        intermediate: bool = False,
        max_ttl: float | None = None,
        backdate: float = 60.0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.intermediate = intermediate
        self.max_ttl = max_ttl
        self.backdate = backdate  # as real CAs do, for clock skew
        self.fail_with: str | None = None  # set: every sign() fails with this message
        self.calls = 0
        self.requests: list[tuple[str, int]] = []  # (SPIFFE id, requested ttl)
        self.generation = 0
        self._make_authorities()

    def _make_authorities(self) -> None:
        now = self.clock.now()
        self.generation += 1
        self.root = _authority(f"Test Root CA {self.generation}", now)
        self.signing = (
            _authority(f"Test Intermediate CA {self.generation}", now, self.root)
            if self.intermediate
            else self.root
        )

    @property
    def root_pem(self) -> str:
        return self.root.pem

    def replace_root(self) -> None:
        """Sign with a new root from now on (an operator plugged in another CA)."""
        self._make_authorities()

    def chain_tail(self) -> list[str]:
        """Everything after the leaf: intermediates, then the root."""
        return [self.signing.pem, self.root.pem] if self.intermediate else [self.root.pem]

    async def sign(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        return self.sign_csr(csr_pem, ttl_seconds)

    def sign_csr(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        self.calls += 1
        if self.fail_with is not None:
            raise CaError(self.fail_with)
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as error:
            raise ValueError(f"not a PEM CSR: {error}") from None
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        try:
            names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise ValueError("the CSR has no subject alternative name") from None
        uris = names.get_values_for_type(x509.UniformResourceIdentifier)
        if len(uris) != 1 or not uris[0].startswith("spiffe://"):
            raise ValueError(f"the CSR must name one SPIFFE id, not {uris}")
        self.requests.append((uris[0], ttl_seconds))
        ttl = float(ttl_seconds) if self.max_ttl is None else min(ttl_seconds, self.max_ttl)
        leaf = self._leaf(csr.public_key(), [x509.UniformResourceIdentifier(uris[0])], ttl)
        return [_pem(leaf), *self.chain_tail()]

    def _leaf(
        self,
        public_key: CertificatePublicKeyTypes,
        names: list[x509.GeneralName],
        ttl: float,
    ) -> x509.Certificate:
        now = self.clock.now()
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.signing.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_time(now - self.backdate))
            .not_valid_after(_time(now + ttl))
            .add_extension(x509.SubjectAlternativeName(names), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.signing.key.public_key()),
                critical=False,
            )
        )
        return builder.sign(self.signing.key, hashes.SHA256())

    def issue(self, spiffe_id: str, ttl: float = 3600.0) -> tuple[bytes, bytes]:
        """A workload certificate made directly (for test clients): (chain PEM, key PEM)."""
        key = keys.new_key()
        leaf = self._leaf(key.public_key(), [x509.UniformResourceIdentifier(spiffe_id)], ttl)
        tail = self.chain_tail()[:-1]
        return "".join([_pem(leaf), *tail]).encode(), keys.private_key_pem(key)

    def serving_certificate(self, ttl: float = 86400.0) -> tuple[bytes, bytes]:
        """A TLS server certificate for 127.0.0.1 and localhost: (chain PEM, key PEM)."""
        key = keys.new_key()
        names: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        leaf = self._leaf(key.public_key(), names, ttl)
        tail = self.chain_tail()[:-1]
        return "".join([_pem(leaf), *tail]).encode(), keys.private_key_pem(key)


class _Servicer(ca_pb2_grpc.IstioCertificateServiceServicer):
    def __init__(self, server: FakeCaServer) -> None:
        self._server = server

    async def CreateCertificate(
        self, request: ca_pb2.IstioCertificateRequest, context: grpc.aio.ServicerContext
    ) -> ca_pb2.IstioCertificateResponse:
        server = self._server
        server.calls += 1
        metadata = dict(context.invocation_metadata() or ())
        if server.token is not None and metadata.get("authorization") != f"Bearer {server.token}":
            server.rejected += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            chain = server.ca.sign_csr(request.csr, int(request.validity_duration))
        except CaError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        return ca_pb2.IstioCertificateResponse(cert_chain=chain)


class FakeCaServer:
    """`FakeCa` over gRPC with TLS on 127.0.0.1; `stop()` then `start()` keeps the port."""

    def __init__(self, ca: FakeCa, *, token: str | None = TEST_TOKEN, port: int = 0) -> None:
        self.ca = ca
        self.token = token
        self.port = port
        self.calls = 0
        self.rejected = 0
        # The serving certificate is made once, under the CA's first root, as the root file
        # the agents were given verifies it.
        self._cert_pem, self._key_pem = ca.serving_certificate()
        self.tls_root_pem = ca.root_pem.encode()
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the fake CA is already serving")
        server = grpc.aio.server()
        ca_pb2_grpc.add_IstioCertificateServiceServicer_to_server(_Servicer(self), server)
        credentials = grpc.ssl_server_credentials([(self._key_pem, self._cert_pem)])
        self.port = server.add_secure_port(f"127.0.0.1:{self.port}", credentials)
        await server.start()
        self._server = server
        log.info("fake CA serving on %s", self.address)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(0)
            log.info("fake CA on %s stopped", self.address)

    @property
    def serving(self) -> bool:
        return self._server is not None
