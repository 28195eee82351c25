"""A binding's SPIFFE identity and its certificate, from the mesh's CA over gRPC (pkg/ca).

The broker makes the key and the CSR, as the node agent does for a pod, and asks the CA with
its own bearer token, which the CA grants for the broker's namespace only
(`spiffe://<td>/ns/<namespace>/sa/*`): the broker can mint binding identities, nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

from cryptography import x509

from api.broker.v1alpha1 import service_binding_pb2
from pkg.ca import client as ca_client
from pkg.ca import csr


@dataclasses.dataclass(frozen=True)
class IssuerOptions:
    ca_address: str  # host:port of IstioCertificateService (TLS)
    ca_root: pathlib.Path  # the mesh's root certificate (PEM): verifies the CA, goes to apps
    token_file: pathlib.Path  # the broker's bearer token for the CA
    timeout: float = 10.0


class Issuer:
    def __init__(self, options: IssuerOptions) -> None:
        self.options = options

    async def issue(
        self, spiffe_id: str, ttl: datetime.timedelta
    ) -> service_binding_pb2.Credentials:
        """A new key and a certificate for `spiffe_id`; raises pkg.ca.client.CaError."""
        # Read both on every issuance: the mesh may have been restarted with a new token.
        root = self.options.ca_root.read_text()
        token = self.options.token_file.read_text().strip()
        key = csr.new_key("ec")
        chain = await ca_client.create_certificate(
            self.options.ca_address,
            root.encode(),
            csr.csr_for(key, spiffe_id),
            int(ttl.total_seconds()),
            token=token,
            timeout=self.options.timeout,
        )
        certificates = [x509.load_pem_x509_certificate(pem.encode()) for pem in chain]
        # The CA answers leaf first and its root last; the app gets the root separately.
        if len(certificates) > 1 and certificates[-1].issuer == certificates[-1].subject:
            chain = chain[:-1]
        return service_binding_pb2.Credentials(
            certificate_chain="".join(_ended(pem) for pem in chain),
            private_key=csr.key_pem(key).decode(),
            root_certificate=_ended(root),
            expires_at=certificates[0]
            .not_valid_after_utc.isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        )


def _ended(pem: str) -> str:
    return pem if pem.endswith("\n") else pem + "\n"
