"""Which workload an SDS stream serves: a SPIFFE identity read from the Envoy node.

Our pilot-agent puts the pod's namespace and service account in the node metadata
(`NAMESPACE`, `SERVICE_ACCOUNT`, Istio's names), and the identity is
`spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` (Istio's format).
"""

from __future__ import annotations

import dataclasses
import re

from envoy.config.core.v3 import base_pb2

DEFAULT_TRUST_DOMAIN = "cluster.local"
DEFAULT_SERVICE_ACCOUNT = "default"  # Kubernetes' account for a pod that names none

# Namespaces are DNS labels; service accounts DNS subdomains. Checking them keeps a node from
# smuggling a path ("a/sa/b") into somebody else's SPIFFE URI.
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SERVICE_ACCOUNT = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_TRUST_DOMAIN = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9._]*[A-Za-z0-9])?")


class InvalidIdentityError(ValueError):
    """The node does not say, or says badly, which workload it is."""


@dataclasses.dataclass(frozen=True, order=True)
class Identity:
    trust_domain: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        if not _TRUST_DOMAIN.fullmatch(self.trust_domain):
            raise InvalidIdentityError(f"invalid trust domain {self.trust_domain!r}")
        if not _NAMESPACE.fullmatch(self.namespace):
            raise InvalidIdentityError(f"invalid namespace {self.namespace!r}")
        if not _SERVICE_ACCOUNT.fullmatch(self.service_account):
            raise InvalidIdentityError(f"invalid service account {self.service_account!r}")

    @property
    def spiffe_id(self) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    def __str__(self) -> str:
        return self.spiffe_id


def identity_from_spiffe_id(spiffe_id: str) -> Identity:
    """`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`, parsed and checked."""
    scheme, _, rest = spiffe_id.partition("://")
    parts = rest.split("/")
    if scheme != "spiffe" or len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
        raise InvalidIdentityError(
            f"{spiffe_id!r} is not spiffe://<trust domain>/ns/<namespace>/sa/<service account>"
        )
    return Identity(parts[0], parts[2], parts[4])


def identity_from_node(node: base_pb2.Node, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> Identity:
    """The identity named by a node's metadata (`NAMESPACE`, `SERVICE_ACCOUNT`)."""
    fields = node.metadata.fields
    namespace = fields["NAMESPACE"].string_value if "NAMESPACE" in fields else ""
    if not namespace:
        raise InvalidIdentityError(
            f"node {node.id!r} has no NAMESPACE in its metadata; cannot tell its identity"
        )
    account = DEFAULT_SERVICE_ACCOUNT
    if "SERVICE_ACCOUNT" in fields and fields["SERVICE_ACCOUNT"].string_value:
        account = fields["SERVICE_ACCOUNT"].string_value
    return Identity(trust_domain, namespace, account)
