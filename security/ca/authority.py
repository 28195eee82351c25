"""Certificate issuance: workload leaves for SPIFFE identities and the CA's own serving cert.

`CertificateAuthority` is pure crypto over a checked `KeyCertBundle`: no I/O, no gRPC, so it
can be timed and tested on its own. Callers authenticate and authorize before calling it.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from security.ca.bundle import KeyCertBundle, SigningKey, key_pem, pem
from security.ca.identity import SpiffeId
from security.ca.request import PublicKey


@dataclasses.dataclass(frozen=True)
class IssuePolicy:
    trust_domain: str = "cluster.local"
    default_ttl: datetime.timedelta = datetime.timedelta(hours=24)  # DEFAULT_WORKLOAD_CERT_TTL
    max_ttl: datetime.timedelta = datetime.timedelta(days=90)  # MAX_WORKLOAD_CERT_TTL
    # notBefore this far in the past, so a peer whose clock is slightly behind the CA's
    # still accepts a certificate issued a moment ago.
    backdate: datetime.timedelta = datetime.timedelta(minutes=1)
    # Citadel's --custom-dns-names: ("account.namespace", DNS name) pairs. A CSR for that
    # service account may also name those hosts, so a server dialled by name (the webhooks
    # the API server calls at istiod.istio-system.svc) can serve with its mesh certificate.
    custom_dns_names: tuple[tuple[str, str], ...] = ()

    def dns_names_for(self, identity: SpiffeId) -> frozenset[str]:
        account = f"{identity.service_account}.{identity.namespace}"
        return frozenset(name for who, name in self.custom_dns_names if who == account)


@dataclasses.dataclass(frozen=True)
class ServerCert:
    key_pem: bytes
    chain_pem: bytes  # leaf, then the CA's chain up to and including the root


class CertificateAuthority:
    def __init__(self, bundle: KeyCertBundle, policy: IssuePolicy) -> None:
        self.bundle = bundle
        self.policy = policy
        self.issued = 0  # workload certificates signed; refusals never move it

    def ttl_for(self, requested_seconds: int) -> datetime.timedelta:
        """The requested validity if positive, else the default; never above the maximum."""
        if requested_seconds <= 0:
            return min(self.policy.default_ttl, self.policy.max_ttl)
        if requested_seconds >= self.policy.max_ttl.total_seconds():  # int64 overflows timedelta
            return self.policy.max_ttl
        return datetime.timedelta(seconds=requested_seconds)

    def sign_workload(
        self,
        public_key: PublicKey,
        identities: Sequence[SpiffeId],
        requested_seconds: int,
        *,
        dns_names: Sequence[str] = (),
        now: datetime.datetime | None = None,
    ) -> list[str]:
        """Sign a leaf for `identities` (and `dns_names`, already authorized); return the PEM
        chain, leaf first and root last."""
        now = now or datetime.datetime.now(datetime.UTC)
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(i)) for i in identities]
        sans += [x509.DNSName(name) for name in dict.fromkeys(dns_names)]
        leaf = self._build(
            public_key,
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.policy.trust_domain)]),
            sans,
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            now,
            self.ttl_for(requested_seconds),
        )
        self.issued += 1
        return [pem(leaf), *(pem(c) for c in self.bundle.chain_after_leaf())]

    def issue_server_cert(
        self,
        dns_names: Sequence[str],
        ips: Sequence[str],
        ttl: datetime.timedelta = datetime.timedelta(days=365),
    ) -> ServerCert:
        """A fresh key and certificate for the CA's own TLS listener."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(dns_names)]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ips)]
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.policy.trust_domain),
                x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0] if dns_names else "istio-ca"),
            ]
        )
        cert = self._build(
            key.public_key(),
            subject,
            sans,
            [ExtendedKeyUsageOID.SERVER_AUTH],
            datetime.datetime.now(datetime.UTC),
            ttl,
        )
        chain = "".join([pem(cert), *(pem(c) for c in self.bundle.chain_after_leaf())])
        return ServerCert(key_pem=key_pem(key), chain_pem=chain.encode())

    def _build(
        self,
        public_key: PublicKey,
        subject: x509.Name,
        sans: Sequence[x509.GeneralName],
        usages: list[x509.ObjectIdentifier],
        now: datetime.datetime,
        ttl: datetime.timedelta,
    ) -> x509.Certificate:
        issuer = self.bundle.cert
        # A certificate outliving its issuer would fail path validation anyway; say so in it.
        not_after = min(now + ttl, issuer.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - self.policy.backdate)
            .not_valid_after(not_after)
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
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            # A leaf's subject may equal its issuer's (both O=<trust domain>); the key ids tell
            # path builders such as OpenSSL it is not self-signed.
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.bundle.key.public_key()  # type: ignore[arg-type]
                ),
                critical=False,
            )
            .sign(self.bundle.key, _hash_for(self.bundle.key))
        )


def _hash_for(key: SigningKey) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()
