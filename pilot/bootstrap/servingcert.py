"""Pilot's own certificate, from the mesh's CA, for its mutual-TLS xDS port (15012).

Pilot asks the CA for `spiffe://<td>/ns/istio-system/sa/istiod` with its token, serves
gRPC with it, and renews it at half-life; new handshakes pick up the renewed certificate
without a restart (gRPC's dynamic server credentials). Clients must present a certificate
from the same CA: each sidecar's Envoy uses its own workload certificate, and Pilot checks
that a stream's node is the workload that certificate names.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import pathlib
from collections.abc import Sequence

import grpc
from cryptography import x509

from pilot.xds.proxy import Proxy
from pilot.xds.server import Authorize
from pkg.ca import client as ca_client
from pkg.ca import csr
from pkg.ca.renewal import keep_renewed

log = logging.getLogger("pilot.tls")


@dataclasses.dataclass(frozen=True)
class SecureXdsOptions:
    address: str  # where the mutual-TLS xDS port listens, e.g. 127.0.0.1:15012
    ca_address: str
    ca_root: pathlib.Path
    token_file: pathlib.Path
    trust_domain: str = "cluster.local"
    identity: str = ""  # default: spiffe://<td>/ns/istio-system/sa/istiod
    ttl: float = 24 * 3600.0
    ca_server_name: str | None = None  # the name the CA's certificate carries, if not the host

    @property
    def spiffe_id(self) -> str:
        return self.identity or f"spiffe://{self.trust_domain}/ns/istio-system/sa/istiod"


class ServingCertificate:
    def __init__(self, options: SecureXdsOptions) -> None:
        self.options = options
        self._config: grpc.ServerCertificateConfiguration | None = None
        self._fresh: grpc.ServerCertificateConfiguration | None = None
        self.not_after: datetime.datetime | None = None
        self.identities: list[str] = []
        self.renewals = 0

    async def obtain(self) -> None:
        """Get a certificate from the CA (raises ca_client.CaError)."""
        root = self.options.ca_root.read_bytes()
        token = self.options.token_file.read_text().strip()
        key = csr.new_key("ec")
        chain = await ca_client.create_certificate(
            self.options.ca_address,
            root,
            csr.csr_for(key, self.options.spiffe_id),
            int(self.options.ttl),
            token=token,
            server_name=self.options.ca_server_name,
        )
        config = grpc.ssl_server_certificate_configuration(
            [(csr.key_pem(key), "".join(chain).encode())], root_certificates=root
        )
        leaf = x509.load_pem_x509_certificate(chain[0].encode())
        self.not_after = leaf.not_valid_after_utc
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.identities = sans.get_values_for_type(x509.UniformResourceIdentifier)
        if self._config is not None:
            self._fresh = config  # picked up by the next handshake
            self.renewals += 1
        self._config = config
        log.info(
            "serving certificate for %s valid until %s",
            self.options.spiffe_id,
            self.not_after.isoformat(),
        )

    def credentials(self) -> grpc.ServerCredentials:
        assert self._config is not None, "obtain() first"
        return grpc.dynamic_ssl_server_credentials(
            self._config, self._take_fresh, require_client_authentication=True
        )

    def _take_fresh(self) -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC before each handshake; None keeps the current certificate.
        fresh, self._fresh = self._fresh, None
        return fresh

    async def run(self) -> None:
        """Renew at half of the remaining life; retry with back-off while the CA is away."""
        await keep_renewed(self, "Pilot's certificate")


def authorize(trust_domain: str) -> Authorize:
    """A stream's node must be the workload its client certificate names."""

    def check(proxy: Proxy, identities: Sequence[str]) -> str | None:
        namespace = proxy.metadata.get("NAMESPACE") or proxy.namespace
        account = proxy.metadata.get("SERVICE_ACCOUNT") or "default"
        expected = f"spiffe://{trust_domain}/ns/{namespace}/sa/{account}"
        if expected in identities:
            return None
        return f"node {proxy.node_id} claims {expected} but its certificate is {', '.join(identities) or 'without a SPIFFE id'}"

    return check
