"""Who is calling, and which identities they may claim.

Two proofs are accepted, as istiod accepts a ServiceAccount JWT or an existing client
certificate:

- `authorization: Bearer <token>` metadata, looked up in the token file (tokens.py);
- a client certificate signed by this CA's signing certificate, presented on the mTLS
  listener; it lets its holder claim exactly the identities in it (renewal).

Authorization then requires every SAN of the CSR to be claimable by the caller.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from security.ca.bundle import KeyCertBundle
from security.ca.errors import Refusal
from security.ca.identity import IdentityError, IdentityPattern, SpiffeId
from security.ca.tokens import TokenFile

Metadata = Iterable[tuple[str, str | bytes]]


@dataclasses.dataclass(frozen=True)
class Caller:
    via: str  # "bearer token", "client certificate" or both, for messages and logs
    patterns: tuple[IdentityPattern, ...]

    def may_claim(self, identity: SpiffeId) -> bool:
        return any(p.matches(identity) for p in self.patterns)


class Authenticator:
    def __init__(self, tokens: TokenFile, bundle: KeyCertBundle) -> None:
        self._tokens = tokens
        self._bundle = bundle

    def authenticate(self, metadata: Metadata, peer_cert_pem: bytes | None) -> Caller:
        """The caller's grants, or Refusal(UNAUTHENTICATED) saying what was missing or wrong."""
        via: list[str] = []
        patterns: list[IdentityPattern] = []
        token = _bearer_token(metadata)
        if token is not None:
            granted = self._tokens.lookup(token)
            if granted is None:
                raise Refusal.unauthenticated("unknown bearer token")
            via.append("bearer token")
            patterns.extend(granted)
        if peer_cert_pem is not None:
            via.append("client certificate")
            patterns.extend(IdentityPattern.exact(i) for i in self._certificate_ids(peer_cert_pem))
        if not via:
            raise Refusal.unauthenticated(
                "no credentials: send metadata 'authorization: Bearer <token>' "
                "or a client certificate issued by this CA"
            )
        return Caller(via=" and ".join(via), patterns=tuple(patterns))

    def _certificate_ids(self, cert_pem: bytes) -> list[SpiffeId]:
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as e:
            raise Refusal.unauthenticated(f"unreadable client certificate: {e}") from None
        # The TLS layer checked the chain up to the root; a sibling intermediate under the
        # same root is not this CA, so insist on our own signing certificate as the issuer.
        try:
            cert.verify_directly_issued_by(self._bundle.cert)
        except (ValueError, TypeError, InvalidSignature):
            raise Refusal.unauthenticated(
                "the client certificate was not issued by this CA"
            ) from None
        now = datetime.datetime.now(datetime.UTC)
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            raise Refusal.unauthenticated("the client certificate is not valid now")
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            sans = x509.SubjectAlternativeName([])
        ids = []
        for uri in sans.get_values_for_type(x509.UniformResourceIdentifier):
            try:
                ids.append(SpiffeId.parse(uri))
            except IdentityError:
                continue
        if not ids:
            raise Refusal.unauthenticated("the client certificate carries no SPIFFE identity")
        return ids


def authorize(caller: Caller, identities: Sequence[SpiffeId]) -> None:
    """Refuse (PERMISSION_DENIED) unless the caller may claim every identity."""
    for identity in identities:
        if not caller.may_claim(identity):
            allowed = ", ".join(str(p) for p in caller.patterns)
            raise Refusal.denied(
                f"the caller ({caller.via}) may not claim identity {identity}; "
                f"it may claim: {allowed}"
            )


def _bearer_token(metadata: Metadata) -> str | None:
    for key, value in metadata:
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal.unauthenticated("the authorization metadata is not 'Bearer <token>'")
        return token.strip()
    return None
