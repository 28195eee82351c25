"""The CA's signing material: its key, its certificate and the chain up to the root.

A `KeyCertBundle` is checked when it is built, so a CA never starts with a key that is not
its certificate's, a signing certificate that is not a CA, or a chain whose links do not
verify: those mistakes would otherwise surface as every workload's TLS handshake failing.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
import itertools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CaConfigError(Exception):
    """The CA's key material is unusable; the message says which file and why."""


class Mode(enum.Enum):
    SELF_SIGNED = "self-signed"
    PLUGGED_IN = "plugged-in"


@dataclasses.dataclass(frozen=True)
class KeyCertBundle:
    key: SigningKey
    cert: x509.Certificate  # signs workload certificates
    # The signing certificate's issuers, nearest first, root last; empty when `cert` is the root.
    issuers: tuple[x509.Certificate, ...]
    mode: Mode

    @property
    def root(self) -> x509.Certificate:
        return self.issuers[-1] if self.issuers else self.cert

    def chain_after_leaf(self) -> list[x509.Certificate]:
        """What follows a leaf in a response: the signing certificate, intermediates, root."""
        return [self.cert, *self.issuers]

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def root_fingerprint(self) -> str:
        return fingerprint(self.root)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lowercase hex (as `openssl x509 -fingerprint` prints it)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_certs(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise CaConfigError(f"{source}: not a PEM certificate list: {e}") from None
    return certs


def load_key(data: bytes, source: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise CaConfigError(f"{source}: not an unencrypted PEM private key: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CaConfigError(f"{source}: unsupported key type {type(key).__name__}; want EC or RSA")
    return key


def build_bundle(
    key: SigningKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    mode: Mode,
    *,
    now: datetime.datetime | None = None,
) -> KeyCertBundle:
    """Check the material and return it as a bundle; raise CaConfigError on any flaw.

    `chain` is the signing certificate's chain as Istio's `cert-chain.pem` holds it: it may
    start with the signing certificate itself and may end with the root, or not.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise CaConfigError("the CA key does not match the CA certificate's public key")
    issuers = [c for c in chain if c != cert]
    _check_ca(cert, "CA certificate", now)
    links = [cert, *issuers]
    for child, parent in itertools.pairwise(links):
        _check_ca(parent, f"chain certificate {parent.subject.rfc4514_string()!r}", now)
        _check_issued(child, parent)
    top = links[-1]
    if top.issuer != top.subject:
        raise CaConfigError(
            f"the chain ends at {top.subject.rfc4514_string()!r}, issued by "
            f"{top.issuer.rfc4514_string()!r}, which is not in the chain"
        )
    _check_issued(top, top)
    return KeyCertBundle(key=key, cert=cert, issuers=tuple(issuers), mode=mode)


def with_root(
    key: SigningKey,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate],
    root: x509.Certificate,
    mode: Mode,
) -> KeyCertBundle:
    """As `build_bundle`, also requiring the chain to end in `root` (Istio's root-cert.pem)."""
    links = [c for c in chain if c != root]
    return build_bundle(key, cert, [*links, root], mode)


def _check_ca(cert: x509.Certificate, what: str, now: datetime.datetime) -> None:
    name = cert.subject.rfc4514_string() or "(empty subject)"
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise CaConfigError(f"{what} {name!r} has no basicConstraints; not a CA") from None
    if not basic.ca:
        raise CaConfigError(f"{what} {name!r} has basicConstraints CA:FALSE; not a CA")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise CaConfigError(f"{what} {name!r} lacks keyUsage keyCertSign")
    if cert.not_valid_after_utc <= now:
        raise CaConfigError(f"{what} {name!r} expired at {cert.not_valid_after_utc.isoformat()}")


def _check_issued(child: x509.Certificate, parent: x509.Certificate) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature) as e:
        raise CaConfigError(
            f"certificate {child.subject.rfc4514_string()!r} does not verify against "
            f"{parent.subject.rfc4514_string()!r}: {e or 'bad signature'}"
        ) from None


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
