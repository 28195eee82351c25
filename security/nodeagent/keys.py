"""Workload keys and their CSRs, made with the CA's own helpers (security/ca/csr.py).

A fresh key for every certificate (Istio's agent does the same): a leaked old key dies with
its certificate. ECDSA P-256 by default, RSA 2048 on request (Istio's WORKLOAD_RSA_KEY_SIZE).
The CSR carries the SPIFFE URI as its only SAN and an empty subject, as Istio's does.
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import serialization

from pkg.ca import csr

PrivateKey = csr.PrivateKey


class KeyType(enum.Enum):
    EC = "ec"  # ECDSA P-256
    RSA = "rsa"  # RSA 2048


def new_key(key_type: KeyType = KeyType.EC) -> PrivateKey:
    """A new private key (RSA takes tens of milliseconds: call it off the event loop)."""
    return csr.new_key(key_type.value)


def csr_for(key: PrivateKey, spiffe_id: str) -> str:
    """A PEM CSR for `spiffe_id`, signed by `key`."""
    return csr.csr_for(key, spiffe_id)


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the form Envoy reads from an SDS `private_key`."""
    return csr.key_pem(key)


def public_key_der(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
