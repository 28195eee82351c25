"""The Secrets the agent serves over SDS, under Istio's names, and their versions.

- `default`: the workload's certificate chain (leaf + intermediates) and private key;
- `ROOTCA`: the trust bundle, to validate peers.
Versions come from content, so a restarted agent never presents old content as new and an
unchanged secret is never pushed again.
"""

from __future__ import annotations

from collections.abc import Iterable

from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from pkg.xds import resources as xds

SECRET_TYPE = xds.SECRET
WORKLOAD_SECRET = "default"  # Istio's WORKLOAD_IDENTITY_SOCKET resource name
ROOT_SECRET = "ROOTCA"
KNOWN_SECRETS = frozenset({WORKLOAD_SECRET, ROOT_SECRET})


def workload_secret(certificate_chain_pem: bytes, private_key_pem: bytes) -> secret_pb2.Secret:
    return secret_pb2.Secret(
        name=WORKLOAD_SECRET,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain={"inline_bytes": certificate_chain_pem},
            private_key={"inline_bytes": private_key_pem},
        ),
    )


def root_secret(bundle_pem: bytes) -> secret_pb2.Secret:
    return secret_pb2.Secret(
        name=ROOT_SECRET,
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca={"inline_bytes": bundle_pem}
        ),
    )


def version_of(secrets: Iterable[secret_pb2.Secret]) -> str:
    """A short hash of the secrets' content, independent of their order (pkg/xds's)."""
    return xds.version_of(xds.Resource(s.name, s) for s in secrets)
