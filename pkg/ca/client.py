"""A client of the CA's CreateCertificate, for the node agent and tests.

    chain = await create_certificate("127.0.0.1:8060", root_pem, csr_pem, 3600, token="...")

Failures raise `CaError` (a subclass per gRPC status that callers act on differently);
`CaError.retryable` tells a transient failure (CA down, deadline) from a refusal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api.security.v1alpha1 import ca_pb2, ca_pb2_grpc

_RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


class CaError(Exception):
    """CreateCertificate failed; `code` is the gRPC status, `message` the CA's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.code in _RETRYABLE


class CaInvalidRequest(CaError):
    """INVALID_ARGUMENT: the CSR itself is wrong (malformed, bad signature, bad SAN)."""


class CaUnauthenticated(CaError):
    """UNAUTHENTICATED: no token / unknown token / client certificate not from this CA."""


class CaPermissionDenied(CaError):
    """PERMISSION_DENIED: the caller may not claim an identity in the CSR."""


class CaUnavailable(CaError):
    """UNAVAILABLE or DEADLINE_EXCEEDED: the CA could not be reached (or TLS failed)."""


_BY_CODE: dict[grpc.StatusCode, type[CaError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: CaInvalidRequest,
    grpc.StatusCode.UNAUTHENTICATED: CaUnauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: CaPermissionDenied,
    grpc.StatusCode.UNAVAILABLE: CaUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: CaUnavailable,
}


def error_for(code: grpc.StatusCode, message: str) -> CaError:
    return _BY_CODE.get(code, CaError)(code, message)


@dataclasses.dataclass(frozen=True)
class ClientCert:
    """A certificate this CA issued, and its key: proof for renewal over mTLS."""

    key_pem: bytes
    chain_pem: bytes  # leaf first, as CreateCertificate returned it

    @classmethod
    def from_chain(cls, key_pem: bytes, chain: Sequence[str]) -> ClientCert:
        return cls(key_pem=key_pem, chain_pem="".join(chain).encode())


class CaClient:
    """One TLS channel to the CA, reused across calls (`async with CaClient(...) as ca:`)."""

    def __init__(
        self,
        address: str,
        root_pem: bytes | str,
        *,
        token: str | None = None,
        client_cert: ClientCert | None = None,
        server_name: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        root = root_pem.encode() if isinstance(root_pem, str) else root_pem
        credentials = grpc.ssl_channel_credentials(
            root,
            client_cert.key_pem if client_cert else None,
            client_cert.chain_pem if client_cert else None,
        )
        # Verify the CA's certificate for this name instead of the address's host.
        options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self._stub = ca_pb2_grpc.IstioCertificateServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout

    async def __aenter__(self) -> CaClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def create_certificate(self, csr_pem: str | bytes, ttl_seconds: int) -> list[str]:
        """Send the CSR; return the PEM chain, leaf first and root last."""
        csr_text = csr_pem.decode() if isinstance(csr_pem, bytes) else csr_pem
        request = ca_pb2.IstioCertificateRequest(csr=csr_text, validity_duration=ttl_seconds)
        try:
            response = await self._stub.CreateCertificate(
                request, metadata=self._metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as e:
            raise error_for(e.code(), e.details() or "") from None
        chain = list(response.cert_chain)
        _check_chain(csr_text, chain)
        return chain


async def create_certificate(
    address: str,
    root_pem: bytes | str,
    csr_pem: str | bytes,
    ttl_seconds: int,
    token: str | None = None,
    client_cert: ClientCert | None = None,
    *,
    server_name: str | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """One CreateCertificate call on a fresh channel; see CaClient."""
    async with CaClient(
        address,
        root_pem,
        token=token,
        client_cert=client_cert,
        server_name=server_name,
        timeout=timeout,
    ) as ca:
        return await ca.create_certificate(csr_pem, ttl_seconds)


def _check_chain(csr_pem: str, chain: list[str]) -> None:
    """The CA answered: make sure it answered this CSR, so a mix-up never reaches Envoy."""
    if not chain:
        raise CaError(grpc.StatusCode.INTERNAL, "the CA returned an empty certificate chain")
    try:
        leaf = x509.load_pem_x509_certificate(chain[0].encode())
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as e:
        raise CaError(
            grpc.StatusCode.INTERNAL, f"unreadable certificate from the CA: {e}"
        ) from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != csr.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise CaError(grpc.StatusCode.INTERNAL, "the CA's certificate is not for this CSR's key")
