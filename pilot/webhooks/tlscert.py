"""The webhooks' serving certificate: from the mesh's CA, as istiod's is, renewed at half-life.

Pilot asks the CA for istiod's identity (`spiffe://<td>/ns/istio-system/sa/istiod`), plus the
DNS names the API server dials (`istiod.istio-system.svc`) when it is told them and the CA
signs them; the key and chain go to files in a private folder, and the one `ssl.SSLContext`
the server listens with loads each renewed pair, so new handshakes get it without a restart.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import pathlib
import ssl
import tempfile
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from pkg.ca import client as ca_client
from pkg.ca import csr
from pkg.ca.renewal import keep_renewed

log = logging.getLogger("pilot.webhooks")


@dataclasses.dataclass(frozen=True)
class CertOptions:
    ca_address: str
    ca_root: pathlib.Path
    token_file: pathlib.Path
    trust_domain: str = "cluster.local"
    identity: str = ""  # default: istiod's SPIFFE id
    dns_names: Sequence[str] = ()
    ttl: float = 24 * 3600.0
    ca_server_name: str | None = None  # the name the CA's certificate carries, if not the host

    @property
    def spiffe_id(self) -> str:
        return self.identity or f"spiffe://{self.trust_domain}/ns/istio-system/sa/istiod"


def _csr(key: csr.PrivateKey, identity: str, dns_names: Sequence[str]) -> str:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity)]
    names += [x509.DNSName(name) for name in dns_names]
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()


class WebhookCertificate:
    def __init__(self, options: CertOptions) -> None:
        self.options = options
        self._folder = pathlib.Path(tempfile.mkdtemp(prefix="pilot-webhook-"))
        os.chmod(self._folder, 0o700)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.not_after: datetime.datetime | None = None
        self.renewals = 0

    async def obtain(self) -> None:
        """A certificate from the CA, loaded into `context` (raises ca_client.CaError, OSError)."""
        root = self.options.ca_root.read_bytes()
        token = self.options.token_file.read_text().strip()
        key = csr.new_key("ec")
        dns_names = self.options.dns_names
        try:
            chain = await self._request(root, key, token, dns_names)
        except ca_client.CaInvalidRequest as error:
            if not dns_names:
                raise
            # A CA that signs SPIFFE identities only: serve with istiod's, and say what fails.
            log.error(
                "the CA refused the DNS names %s (%s); serving with %s only, which an API "
                "server dialing those names will not accept",
                ", ".join(dns_names),
                error.message,
                self.options.spiffe_id,
            )
            chain = await self._request(root, key, token, ())
        key_file, chain_file = self._folder / "key.pem", self.chain_file
        key_file.touch(mode=0o600)
        key_file.write_bytes(csr.key_pem(key))
        chain_file.write_text("".join(chain))
        self.context.load_cert_chain(chain_file, key_file)
        leaf = x509.load_pem_x509_certificate(chain[0].encode())
        renewed = self.not_after is not None
        self.not_after = leaf.not_valid_after_utc
        self.renewals += renewed
        log.info(
            "webhook certificate for %s valid until %s",
            self.options.spiffe_id,
            self.not_after.isoformat(),
        )

    @property
    def chain_file(self) -> pathlib.Path:
        return self._folder / "cert-chain.pem"

    async def _request(
        self, root: bytes, key: csr.PrivateKey, token: str, dns_names: Sequence[str]
    ) -> list[str]:
        return await ca_client.create_certificate(
            self.options.ca_address,
            root,
            _csr(key, self.options.spiffe_id, dns_names),
            int(self.options.ttl),
            token=token,
            server_name=self.options.ca_server_name,
        )

    async def run(self) -> None:
        """Renew at half of the remaining life; retry with back-off while the CA is away."""
        await keep_renewed(self, "the webhook certificate")

    def close(self) -> None:
        for path in self._folder.glob("*"):
            path.unlink(missing_ok=True)
        self._folder.rmdir()
