"""A signed chain from the CA, checked and read: leaf, intermediates, root, validity.

The CA answers `cert_chain` as PEM strings, leaf first and root last. The agent checks what it
got before serving it: the leaf must carry the key the agent generated and the SPIFFE URI it
asked for, and must not be expired, since Envoy would otherwise serve something no peer accepts.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from security.nodeagent import keys


class InvalidChainError(ValueError):
    """The CA's answer cannot be served."""


@dataclasses.dataclass(frozen=True)
class Chain:
    leaf_pem: str
    intermediate_pems: tuple[str, ...]
    root_pem: str | None  # None when the CA sent the leaf alone
    serial: int
    not_before: datetime.datetime
    not_after: datetime.datetime
    uris: tuple[str, ...]

    @property
    def certificate_chain_pem(self) -> bytes:
        """Leaf then intermediates: what Envoy presents to its peers."""
        return "".join(_normalized(p) for p in (self.leaf_pem, *self.intermediate_pems)).encode()

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")


def _normalized(pem: str) -> str:
    return pem.strip() + "\n"


def _load(pem: str, position: int) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as error:
        raise InvalidChainError(
            f"cert_chain[{position}] is not a PEM certificate: {error}"
        ) from None


def _uris(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(names.value.get_values_for_type(x509.UniformResourceIdentifier))


def parse_chain(pems: Sequence[str]) -> Chain:
    """Read a `cert_chain` answer (leaf first, root last)."""
    if not pems:
        raise InvalidChainError("the CA returned an empty cert_chain")
    certificates = [_load(pem, i) for i, pem in enumerate(pems)]
    leaf = certificates[0]
    return Chain(
        leaf_pem=_normalized(pems[0]),
        intermediate_pems=tuple(_normalized(p) for p in pems[1:-1]),
        root_pem=_normalized(pems[-1]) if len(pems) > 1 else None,
        serial=leaf.serial_number,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        uris=_uris(leaf),
    )


def check_chain(chain: Chain, key: keys.PrivateKey, spiffe_id: str, now: float) -> None:
    """Raise InvalidChainError unless the leaf is ours, for `spiffe_id`, and valid at `now`."""
    leaf = x509.load_pem_x509_certificate(chain.leaf_pem.encode())
    leaf_key = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if leaf_key != keys.public_key_der(key):
        raise InvalidChainError("the leaf certificate does not carry the key of our CSR")
    if spiffe_id not in chain.uris:
        raise InvalidChainError(f"the leaf certificate is for {list(chain.uris)}, not {spiffe_id}")
    if chain.not_after.timestamp() <= now:
        raise InvalidChainError(f"the leaf certificate expired at {chain.not_after.isoformat()}")


def certificate_uris(pem: bytes | str) -> tuple[str, ...]:
    """The URI SANs of one PEM certificate (tests, status)."""
    data = pem.encode() if isinstance(pem, str) else pem
    return _uris(x509.load_pem_x509_certificate(data))
