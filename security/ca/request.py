"""A CreateCertificate request's CSR, parsed and checked before anyone may sign it.

Only the CSR's public key, its SPIFFE URI SANs and the DNS SANs its identities are granted
(Citadel's --custom-dns-names) are ever used: every other field and requested extension (a
CSR may ask for CA:TRUE) is ignored, since the CA builds the certificate itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
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
    dns_names: tuple[str, ...] = ()  # sorted; each granted to one of the identities


DnsGrants = Callable[[SpiffeId], Collection[str]]


def parse_csr(
    csr_pem: str, trust_domain: str, dns_grants: DnsGrants | None = None
) -> SigningRequest:
    """Parse and check a PEM CSR; raise Refusal(INVALID_ARGUMENT, 'invalid CSR: ...').
    A DNS SAN is allowed only when `dns_grants` gives it to one of the CSR's identities."""
    if not csr_pem.strip():
        raise Refusal.invalid("invalid CSR: the request has no CSR")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except (ValueError, x509.InvalidVersion) as e:  # InvalidVersion is no ValueError
        raise Refusal.invalid(f"invalid CSR: {e}") from None
    try:
        signature_ok = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:  # e.g. a curve it cannot use
        raise Refusal.invalid(f"invalid CSR: cannot check the signature: {e}") from None
    if not signature_ok:
        raise Refusal.invalid("invalid CSR: the signature does not verify with its public key")
    public_key = _check_key(csr)
    identities, dns_names = _identities(csr, trust_domain, dns_grants)
    return SigningRequest(public_key=public_key, identities=identities, dns_names=dns_names)


def _check_key(csr: x509.CertificateSigningRequest) -> PublicKey:
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as e:
        raise Refusal.invalid(f"invalid CSR: unusable public key: {e}") from None
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


def _identities(
    csr: x509.CertificateSigningRequest, trust_domain: str, dns_grants: DnsGrants | None
) -> tuple[tuple[SpiffeId, ...], tuple[str, ...]]:
    want = f"want one or more SPIFFE URIs spiffe://{trust_domain}/ns/<namespace>/sa/<account>"
    try:
        names = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        names = []
    except x509.DuplicateExtension as e:  # not a ValueError; RFC 5280 allows each once
        raise Refusal.invalid(
            f"invalid CSR: extension {_extension_name(e.oid)} appears more than once"
        ) from None
    except (ValueError, x509.UnsupportedGeneralNameType) as e:  # malformed, or x400Address
        raise Refusal.invalid(f"invalid CSR: bad extensions: {e}") from None
    if not names:
        raise Refusal.invalid(f"invalid CSR: no subject alternative name; {want}")
    identities = set()
    dns_names: list[x509.DNSName] = []
    for name in names:
        if isinstance(name, x509.DNSName) and dns_grants is not None:
            dns_names.append(name)
            continue
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
    if not identities:
        raise Refusal.invalid(f"invalid CSR: no SPIFFE identity; {want}")
    granted = {n for identity in identities for n in (dns_grants(identity) if dns_grants else ())}
    for name in dns_names:
        if name.value not in granted:
            raise Refusal.invalid(
                f"invalid CSR: subject alternative name {_describe(name)} is not allowed for "
                f"{', '.join(str(i) for i in sorted(identities))} (DNS names are "
                "allowed only as --custom-dns-names grants them); "
                f"{want}"
            )
    return tuple(sorted(identities)), tuple(sorted({n.value for n in dns_names}))


def _extension_name(oid: x509.ObjectIdentifier) -> str:
    if oid == x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
        return f"{oid.dotted_string} (subject alternative name)"
    return oid.dotted_string


def _describe(name: x509.GeneralName) -> str:
    kind = {
        x509.DNSName: "DNS",
        x509.IPAddress: "IP",
        x509.RFC822Name: "email",
    }.get(type(name), type(name).__name__)
    return f"{kind}:{getattr(name, 'value', name)}"
