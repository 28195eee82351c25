"""The CA as the secret cache sees it: a `Signer`, and the real one over gRPC.

`CaClient` calls `istio.v1.auth.IstioCertificateService/CreateCertificate` through the CA's
own client (`pkg.ca.client.create_certificate`): TLS verified against the CA's root, the
caller's token as `authorization: Bearer <token>`. Every call reads the token file (projected
tokens rotate) and the root file (an operator may replace it) and opens a fresh channel, so an
attempt after a CA outage connects at once, paced by the agent's own back-off rather than by
gRPC's reconnect timer (which grows to two minutes). At one call per identity per rotation,
the extra TLS handshake costs nothing that matters.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Protocol

from pkg.ca import client as ca_client

DEFAULT_TIMEOUT = 10.0


class CaError(Exception):
    """A certificate could not be obtained from the CA (the agent retries)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Signer(Protocol):
    """What the secret cache needs from a CA: a signed chain for a CSR."""

    async def sign(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        """The chain for `csr_pem` (PEM strings, leaf first, root last); raises CaError."""
        ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class CaClientOptions:
    address: str  # host:port
    root_path: pathlib.Path  # the CA's root certificate (PEM), to verify its TLS certificate
    token_path: pathlib.Path | None = None  # bearer token; None sends no authorization
    server_name: str | None = None  # TLS name to expect, when not the address's host
    timeout: float = DEFAULT_TIMEOUT  # per call


class CaClient:
    """A `Signer` talking to the CA at `options.address`."""

    def __init__(self, *, options: CaClientOptions) -> None:
        self._options = options

    async def sign(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        options = self._options
        root = _read(options.root_path, "the CA root").encode()
        token = None if options.token_path is None else _read(options.token_path, "the token")
        try:
            return await ca_client.create_certificate(
                options.address,
                root,
                csr_pem,
                ttl_seconds,
                token=token,
                server_name=options.server_name,
                timeout=options.timeout,
            )
        except ca_client.CaError as error:
            raise CaError(
                f"CreateCertificate at {options.address}: {error}", retryable=error.retryable
            ) from None


def _read(path: pathlib.Path, what: str) -> str:
    try:
        text = path.read_text().strip()
    except OSError as error:
        raise CaError(f"cannot read {what} file {path}: {error.strerror}") from None
    if not text:
        raise CaError(f"{what} file {path} is empty")
    return text
