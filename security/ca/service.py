"""The gRPC face of the CA: istio.v1.auth.IstioCertificateService/CreateCertificate.

Order matters: authenticate (cheap, and nothing from an anonymous caller gets parsed), then
parse and check the CSR, then authorize every SAN, and only then sign. Every refusal is a
`Refusal` carrying its status code, and nothing is signed on any of them.
"""

from __future__ import annotations

import logging

import grpc

from api.security.v1alpha1 import ca_pb2, ca_pb2_grpc
from security.ca.auth import Authenticator, authorize
from security.ca.authority import CertificateAuthority
from security.ca.errors import Refusal
from security.ca.metrics import CaMetrics
from security.ca.request import parse_csr

log = logging.getLogger("security.ca")


class CertificateService(ca_pb2_grpc.IstioCertificateServiceServicer):
    def __init__(
        self, authority: CertificateAuthority, authenticator: Authenticator, metrics: CaMetrics
    ) -> None:
        self._authority = authority
        self._authenticator = authenticator
        self._metrics = metrics

    async def CreateCertificate(
        self, request: ca_pb2.IstioCertificateRequest, context: grpc.aio.ServicerContext
    ) -> ca_pb2.IstioCertificateResponse:
        self._metrics.csr_count.inc()
        try:
            chain = self._create(request, context)
        except Refusal as refusal:
            self._metrics.refused(refusal.code)
            log.info("refused a CSR from %s: %s: %s", context.peer(), refusal.code.name, refusal)
            await context.abort(refusal.code, refusal.message)
        self._metrics.issued.inc()
        return ca_pb2.IstioCertificateResponse(cert_chain=chain)

    def _create(
        self, request: ca_pb2.IstioCertificateRequest, context: grpc.aio.ServicerContext
    ) -> list[str]:
        caller = self._authenticator.authenticate(
            context.invocation_metadata() or (), _peer_certificate(context)
        )
        policy = self._authority.policy
        csr = parse_csr(request.csr, policy.trust_domain, policy.dns_names_for)
        authorize(caller, csr.identities)
        chain = self._authority.sign_workload(
            csr.public_key, csr.identities, request.validity_duration, dns_names=csr.dns_names
        )
        log.info(
            "issued a certificate for %s to %s (%s)",
            ", ".join([*(str(i) for i in csr.identities), *csr.dns_names]),
            context.peer(),
            caller.via,
        )
        return chain


def _peer_certificate(context: grpc.aio.ServicerContext) -> bytes | None:
    """The client's certificate, if it presented one (only on the mTLS listener)."""
    certs = context.auth_context().get("x509_pem_cert")
    return certs[0] if certs else None
