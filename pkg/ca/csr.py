"""Workload keys and CSRs, as the node agent makes them (and as tests do)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def new_key(kind: str = "ec") -> PrivateKey:
    """ECDSA P-256 (`ec`, istio-agent's ECC option) or RSA 2048 (`rsa`, WORKLOAD_RSA_KEY_SIZE)."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown key kind {kind!r}; want ec or rsa")


def csr_for(key: PrivateKey, identity: str | Sequence[str]) -> str:
    """A PEM CSR whose only SANs are the given SPIFFE URIs; the subject stays empty (Istio's)."""
    identities = [identity] if isinstance(identity, str) else list(identity)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(i) for i in identities]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (what Envoy and gRPC read)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
