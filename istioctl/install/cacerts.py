"""What the CA needs before it starts, created by `istioctl install` when missing.

- Secret `cacerts` (Istio's plugged-in CA files): a self-signed root the CA signs with;
- ConfigMap `istio-ca-root-cert` (root-cert.pem), which Pilot, the node agent and every
  sidecar trust, in istio-system and the namespaces given;
- the CA's bearer tokens: Secret `istio-ca-tokens` (tokens.yaml: each token and the
  identities it may ask for) and one Secret per caller holding its token: `istiod-ca-token`
  for Pilot (istiod's identity) and `istio-nodeagent-ca-token` for the node agents (any
  workload's).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import secrets
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclasses.dataclass(frozen=True)
class CaMaterial:
    root_pem: str
    key_pem: str
    pilot_token: str
    nodeagent_token: str


def new_material(trust_domain: str = "cluster.local", years: int = 10) -> CaMaterial:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Root CA")])  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CaMaterial(
        root_pem=root.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        pilot_token=secrets.token_urlsafe(32),
        nodeagent_token=secrets.token_urlsafe(32),
    )


def _secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"release": "istio"}},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def objects(
    material: CaMaterial, namespace: str, trust_domain: str, root_namespaces: list[str]
) -> list[dict[str, Any]]:
    tokens = [
        {
            "token": material.pilot_token,
            "identities": [f"spiffe://{trust_domain}/ns/{namespace}/sa/istiod"],
        },
        {"token": material.nodeagent_token, "identities": [f"spiffe://{trust_domain}/ns/*/sa/*"]},
    ]
    out = [
        # A self-signed root serves as its own intermediate: the four cacerts files.
        _secret(
            "cacerts",
            namespace,
            {
                "ca-cert.pem": material.root_pem,
                "ca-key.pem": material.key_pem,
                "root-cert.pem": material.root_pem,
                "cert-chain.pem": material.root_pem,
            },
        ),
        _secret("istio-ca-tokens", namespace, {"tokens.yaml": yaml.safe_dump(tokens)}),
        _secret("istiod-ca-token", namespace, {"token": material.pilot_token}),
        _secret("istio-nodeagent-ca-token", namespace, {"token": material.nodeagent_token}),
    ]
    for ns in dict.fromkeys([namespace, *root_namespaces]):
        out.append({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "istio-ca-root-cert", "namespace": ns, "labels": {"istio.io/config": "true"}},
            "data": {"root-cert.pem": material.root_pem},
        })  # fmt: skip
    return out


def ca_bundle(root_pem: str) -> str:
    """A webhook configuration's caBundle: the root PEM, base64."""
    return base64.b64encode(root_pem.encode()).decode()
