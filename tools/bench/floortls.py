"""Mutual TLS for the floor's hop: what two stock Envoys cost when they talk as sidecars do.

Our sidecars talk to each other over mutual TLS (ECDSA P-256 workload certificates with a
SPIFFE id, from the mesh's CA), the floor's two Envoys in plaintext. To tell what is TLS's
share of the sidecars' cost from what is ours, the floor runs once more with the same kind of
hop: a root and one workload certificate written here, static files on both sides, the client
presenting its certificate and the server requiring one.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SPIFFE_ID = "spiffe://cluster.local/ns/default/sa/floor"
_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"


@dataclasses.dataclass(frozen=True)
class Material:
    root: pathlib.Path
    cert: pathlib.Path
    key: pathlib.Path


def write_material(folder: pathlib.Path) -> Material:
    """A root, and a workload certificate it signed for SPIFFE_ID, as PEM files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(SPIFFE_ID)]),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    material = Material(folder / "root.pem", folder / "cert.pem", folder / "key.pem")
    material.root.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    material.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    material.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return material


def _common(material: Material) -> dict[str, Any]:
    return {
        "tls_certificates": [
            {
                "certificate_chain": {"filename": str(material.cert)},
                "private_key": {"filename": str(material.key)},
            }
        ],
        "validation_context": {
            "trusted_ca": {"filename": str(material.root)},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": SPIFFE_ID}}],
        },
    }


def upstream_socket(material: Material) -> dict[str, Any]:
    """The client Envoy's cluster: present the certificate, check the server's."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": f"{_TLS}.UpstreamTlsContext",
            "common_tls_context": _common(material),
        },
    }


def downstream_socket(material: Material) -> dict[str, Any]:
    """The server Envoy's listener: require the client's certificate."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": f"{_TLS}.DownstreamTlsContext",
            "common_tls_context": _common(material),
            "require_client_certificate": True,
        },
    }
