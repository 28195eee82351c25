"""SPIFFE identities (`spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`) and the
patterns the token file grants them with.

A pattern is an identity whose path segments may be `*`, standing for exactly one segment:
`spiffe://cluster.local/ns/*/sa/*` grants every service account of the trust domain,
`spiffe://cluster.local/ns/default/sa/*` those of one namespace. The trust domain itself is
never a wildcard: a token grants identities of one named trust domain.
"""

from __future__ import annotations

import dataclasses
import re

SCHEME = "spiffe://"
# A DNS-label-like segment: what Kubernetes allows in namespace and service account names.
_SEGMENT = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$")


class IdentityError(ValueError):
    """A string that is not a workload SPIFFE identity (or pattern)."""


@dataclasses.dataclass(frozen=True, order=True)
class SpiffeId:
    trust_domain: str
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        """Parse a workload identity; raise IdentityError saying what is wrong with it."""
        trust_domain, ns, sa = _split(uri, wildcards=False)
        return cls(trust_domain, ns, sa)


@dataclasses.dataclass(frozen=True)
class IdentityPattern:
    """`spiffe://<td>/ns/<ns or *>/sa/<sa or *>`; `*` matches one whole segment."""

    trust_domain: str
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @classmethod
    def parse(cls, text: str) -> IdentityPattern:
        trust_domain, ns, sa = _split(text, wildcards=True)
        return cls(trust_domain, ns, sa)

    @classmethod
    def exact(cls, identity: SpiffeId) -> IdentityPattern:
        return cls(identity.trust_domain, identity.namespace, identity.service_account)

    def matches(self, identity: SpiffeId) -> bool:
        return (
            self.trust_domain == identity.trust_domain
            and self.namespace in ("*", identity.namespace)
            and self.service_account in ("*", identity.service_account)
        )


def _split(text: str, *, wildcards: bool) -> tuple[str, str, str]:
    if not text.startswith(SCHEME):
        raise IdentityError(f"{text!r} is not a SPIFFE URI (want spiffe://<td>/ns/<ns>/sa/<sa>)")
    parts = text[len(SCHEME) :].split("/")
    if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
        raise IdentityError(f"{text!r} is not of the form spiffe://<td>/ns/<ns>/sa/<sa>")
    trust_domain, _, ns, _, sa = parts
    if not _TRUST_DOMAIN.match(trust_domain):
        raise IdentityError(f"{text!r}: invalid trust domain {trust_domain!r}")
    for what, value in (("namespace", ns), ("service account", sa)):
        if wildcards and value == "*":
            continue
        if not _SEGMENT.match(value):
            raise IdentityError(f"{text!r}: invalid {what} {value!r}")
    return trust_domain, ns, sa
