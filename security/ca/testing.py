"""Test support for the CA (and for the node agent's tests and the lead's benchmarks).

- `running_ca(tmp_path, ...)`: a real CaServer in this event loop, on 127.0.0.1 ephemeral
  ports, with a token file; yields the server (`.address`, `.mtls_address`,
  `.health_address`, `.authority.issued`, `.bundle.root_pem()`).
- `write_plugged_in(ca_dir)`: an operator's root and intermediate, as Istio's cacerts files.
- `issue_once(...)`: one whole workload issuance (key, CSR, TLS CreateCertificate) — the
  unit to time.
- `run_async`: run an `async def` test in its own loop, bounded, failing on leaked tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import pathlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pkg.ca.client import ClientCert, create_certificate
from pkg.ca.csr import PrivateKey, csr_for, new_key
from pkg.testing.aio import run_async as run_async  # re-exported for this package's tests
from security.ca import cadir
from security.ca.bundle import SigningKey, key_pem, pem
from security.ca.options import CaOptions
from security.ca.server import CaServer


def write_tokens(path: pathlib.Path, grants: Mapping[str, Sequence[str]]) -> pathlib.Path:
    """A token file granting each token its identity patterns."""
    entries = [{"token": t, "identities": list(ids)} for t, ids in grants.items()]
    path.write_text(yaml.safe_dump(entries))
    return path


@contextlib.asynccontextmanager
async def running_ca(
    tmp_path: pathlib.Path,
    *,
    ca_dir: pathlib.Path | None = None,
    grants: Mapping[str, Sequence[str]] | None = None,
    **overrides: Any,
) -> AsyncIterator[CaServer]:
    """A CA serving on 127.0.0.1 ephemeral ports until the block exits."""
    await asyncio.to_thread(tmp_path.mkdir, parents=True, exist_ok=True)
    tokens = tmp_path / "tokens.yaml"
    if grants is not None or not tokens.exists():
        write_tokens(tokens, grants or {})
    options = CaOptions(
        ca_dir=ca_dir or tmp_path / "ca",
        tokens=tokens,
        address="127.0.0.1:0",
        mtls_address="127.0.0.1:0",
        health_address="127.0.0.1:0",
        **overrides,
    )
    server = CaServer(options)
    task = asyncio.create_task(server.run(), name="istio-ca")
    try:
        ready = asyncio.create_task(server.ready.wait(), name="istio-ca-ready")
        try:
            async with asyncio.timeout(30):
                await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
        if task.done():
            task.result()  # raises why it stopped before serving
        yield server
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclasses.dataclass(frozen=True)
class Issued:
    key: PrivateKey
    chain: list[str]

    def client_cert(self) -> ClientCert:
        return ClientCert.from_chain(key_pem(self.key), self.chain)


async def issue_once(
    address: str,
    root_pem: bytes,
    identity: str,
    *,
    token: str | None = None,
    client_cert: ClientCert | None = None,
    ttl_seconds: int = 3600,
    key_kind: str = "ec",
) -> Issued:
    """New key, CSR for `identity`, CreateCertificate over TLS: what a workload's start costs."""
    key = new_key(key_kind)
    chain = await create_certificate(
        address, root_pem, csr_for(key, identity), ttl_seconds, token, client_cert
    )
    return Issued(key=key, chain=chain)


@dataclasses.dataclass(frozen=True)
class PluggedIn:
    root: x509.Certificate
    root_key: SigningKey
    intermediate: x509.Certificate
    intermediate_key: SigningKey


def write_plugged_in(ca_dir: pathlib.Path, trust_domain: str = "cluster.local") -> PluggedIn:
    """An operator's root and an intermediate signed by it, written as Istio's cacerts files."""
    root_key, root = cadir.generate_root(
        cadir.RootOptions(trust_domain=f"root.{trust_domain}", key_type="ec")
    )
    key, intermediate = new_intermediate(root, root_key, trust_domain)
    ca_dir.mkdir(parents=True, exist_ok=True)
    (ca_dir / cadir.CA_CERT).write_text(pem(intermediate))
    (ca_dir / cadir.CA_KEY).write_bytes(key_pem(key))
    (ca_dir / cadir.ROOT_CERT).write_text(pem(root))
    (ca_dir / cadir.CERT_CHAIN).write_text(pem(intermediate) + pem(root))
    return PluggedIn(root=root, root_key=root_key, intermediate=intermediate, intermediate_key=key)


def new_intermediate(
    root: x509.Certificate, root_key: SigningKey, trust_domain: str, name: str = "Intermediate CA"
) -> tuple[SigningKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    return key, cert


def tampered_csr(csr_pem: str, old: bytes, new: bytes) -> str:
    """The CSR with bytes of its signed content replaced (same length): well-formed DER whose
    signature no longer verifies, e.g. a SAN changed after signing."""
    assert len(old) == len(new)
    der = x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER)
    assert der.count(old) == 1
    tampered = x509.load_der_x509_csr(der.replace(old, new))
    return tampered.public_bytes(serialization.Encoding.PEM).decode()


# 2.5.29.17 (subjectAltName) and a private-arc OID of the same encoded length, so one can
# stand in for the other in signed DER without changing any length.
_SAN_OID = b"\x06\x03\x55\x1d\x11"
_STAND_IN_OID = b"\x06\x03\x55\x1d\x63"  # 2.5.29.99, unassigned


def csr_with_two_sans(key: ec.EllipticCurvePrivateKey, first: str, second: str) -> str:
    """A correctly signed CSR carrying two SubjectAlternativeName extensions (RFC 5280 allows
    one), each one SPIFFE URI. cryptography's builder refuses a repeated extension, so the
    second is built under a stand-in OID, renamed in the DER and the request signed again."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(first)]), critical=False
    )
    second_value = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(second)])
    stand_in = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("2.5.29.99"), second_value.public_bytes()
    )
    builder = builder.add_extension(stand_in, critical=False)
    csr = builder.sign(key, hashes.SHA256())
    info = csr.tbs_certrequest_bytes
    assert info.count(_STAND_IN_OID) == 1
    info = info.replace(_STAND_IN_OID, _SAN_OID)
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    algorithm = _der(0x30, _der(0x06, bytes.fromhex("2a8648ce3d040302")))  # ecdsa-with-SHA256
    der = _der(0x30, info + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (definite length)."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        size = (n.bit_length() + 7) // 8
        length = bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + content
