"""A CreateCertificate request's CSR, parsed and checked before anyone may sign it.

Only the CSR's public key and its SPIFFE URI SANs are ever used: every other field and
requested extension (a CSR may ask for CA:TRUE) is ignored, since the CA builds the
certificate itself.
"""

from __future__ import annotations

import dataclasses

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from security.ca.errors import Refusal
from security.ca.identity import IdentityError, SpiffeId

_CURVES = (ec.SECP256R1, ec.SECP384R1)
_MIN_RSA_BITS = 2048

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclasses.dataclass(frozen=True)
class SigningRequest:
    public_key: PublicKey
    identities: tuple[SpiffeId, ...]  # sorted, without duplicates


def parse_csr(csr_pem: str, trust_domain: str) -> SigningRequest:
    """Parse and check a PEM CSR; raise Refusal(INVALID_ARGUMENT, 'invalid CSR: ...')."""
    if not csr_pem.strip():
        raise Refusal.invalid("invalid CSR: the request has no CSR")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as e:
        raise Refusal.invalid(f"invalid CSR: {e}") from None
    try:
        signature_ok = csr.is_signature_valid
    except (ValueError, TypeError) as e:  # e.g. an algorithm cryptography cannot check
        raise Refusal.invalid(f"invalid CSR: cannot check the signature: {e}") from None
    if not signature_ok:
        raise Refusal.invalid("invalid CSR: the signature does not verify with its public key")
    public_key = _check_key(csr)
    identities = _identities(csr, trust_domain)
    return SigningRequest(public_key=public_key, identities=identities)


def _check_key(csr: x509.CertificateSigningRequest) -> PublicKey:
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise Refusal.invalid(
                f"invalid CSR: RSA key of {key.key_size} bits; want at least {_MIN_RSA_BITS}"
            )
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise Refusal.invalid(
                f"invalid CSR: EC curve {key.curve.name} not supported; want P-256 or P-384"
            )
        return key
    raise Refusal.invalid(f"invalid CSR: unsupported key type {type(key).__name__}")


def _identities(csr: x509.CertificateSigningRequest, trust_domain: str) -> tuple[SpiffeId, ...]:
    want = f"want one or more SPIFFE URIs spiffe://{trust_domain}/ns/<namespace>/sa/<account>"
    try:
        names = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        names = []
    except ValueError as e:  # a malformed extension inside a well-signed CSR
        raise Refusal.invalid(f"invalid CSR: bad extensions: {e}") from None
    if not names:
        raise Refusal.invalid(f"invalid CSR: no subject alternative name; {want}")
    identities = set()
    for name in names:
        if not isinstance(name, x509.UniformResourceIdentifier):
            raise Refusal.invalid(
                f"invalid CSR: subject alternative name {_describe(name)} is not allowed; {want}"
            )
        try:
            identity = SpiffeId.parse(name.value)
        except IdentityError as e:
            raise Refusal.invalid(f"invalid CSR: {e}") from None
        if identity.trust_domain != trust_domain:
            raise Refusal.invalid(
                f"identity {identity} is outside this CA's trust domain {trust_domain!r}"
            )
        identities.add(identity)
    return tuple(sorted(identities))


def _describe(name: x509.GeneralName) -> str:
    kind = {
        x509.DNSName: "DNS",
        x509.IPAddress: "IP",
        x509.RFC822Name: "email",
    }.get(type(name), type(name).__name__)
    return f"{kind}:{getattr(name, 'value', name)}"
