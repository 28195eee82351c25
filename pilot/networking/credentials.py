"""Gateway credentials: Kubernetes Secrets named by a Gateway's `credentialName`, as SDS secrets.

Istio's gateways read no certificate files for `credentialName`: istiod reads the Secret
from the Kubernetes API and serves it on the gateway's own xDS connection, as an SDS
resource named `kubernetes://<name>` (the certificate and key) and, for MUTUAL,
`kubernetes://<name>-cacert` (the client CA). The Secret is looked up in the gateway
workload's namespace. Keys, as Istio reads them:

- certificate and key: `tls.crt`/`tls.key` (type kubernetes.io/tls) or `cert`/`key` (generic);
- client CA: `ca.crt` or `cacert`, in the Secret `<name>-cacert` if it exists, else in the
  Secret `<name>` itself.

Only a gateway proxy gets these, from its own namespace, and only for credentials that a
Gateway selecting it names: istiod refuses a proxy the secrets it has no business with.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from pilot.model.push_context import PushContext
from pkg.config.resource import Resource

PREFIX = "kubernetes://"
CA_SUFFIX = "-cacert"
_CERT_KEYS = (("tls.crt", "tls.key"), ("cert", "key"))
_CA_KEYS = ("ca.crt", "cacert")


@dataclasses.dataclass(frozen=True)
class KeyPair:
    certificate_chain: bytes
    private_key: bytes


def resource_name(credential: str) -> str:
    return PREFIX + credential


def ca_resource_name(credential: str) -> str:
    return PREFIX + credential + CA_SUFFIX


def _data(secret: Resource) -> dict[str, bytes]:
    """The Secret's values, decoded (`stringData` too, for a store that keeps it as written)."""
    body = secret.body or {}
    out: dict[str, bytes] = {}
    for key, value in (body.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError, TypeError):
            continue  # not base64: the store refuses such a Secret, so nothing to serve
    for key, value in (body.get("stringData") or {}).items():
        out.setdefault(key, str(value).encode())
    return out


def _secret(push: PushContext, namespace: str, name: str) -> Resource | None:
    return push.secrets.get((namespace, name))


def key_pair(push: PushContext, namespace: str, credential: str) -> KeyPair | None:
    """The certificate and key of Secret `credential`, or None if it has neither pair."""
    secret = _secret(push, namespace, credential)
    if secret is None:
        return None
    data = _data(secret)
    for cert_key, key_key in _CERT_KEYS:
        if data.get(cert_key) and data.get(key_key):
            return KeyPair(data[cert_key], data[key_key])
    return None


def client_ca(push: PushContext, namespace: str, credential: str) -> bytes | None:
    """The client CA for `credential`: from `<credential>-cacert`, else from `credential`."""
    for name in (credential + CA_SUFFIX, credential):
        secret = _secret(push, namespace, name)
        if secret is None:
            continue
        data = _data(secret)
        for key in _CA_KEYS:
            if data.get(key):
                return data[key]
    return None


def referenced(push: PushContext, labels: Mapping[str, str]) -> set[str]:
    """The credentialNames of the Gateways that select a gateway with `labels`."""
    return {
        server.tls.credential_name
        for gateway in push.gateways_for(labels)
        for server in gateway.spec.servers
        if server.HasField("tls") and server.tls.credential_name
    }


def sds_secrets(
    push: PushContext,
    namespace: str,
    labels: Mapping[str, str],
    requested: Collection[str],
) -> list[dict[str, Any]]:
    """Envoy `Secret`s (JSON form) for the requested `kubernetes://` names a gateway may have.

    A name Envoy asks for that is not (yet) there gets nothing: Envoy keeps waiting for it,
    and the listener generator leaves out the servers whose credentials are missing, so a
    missing Secret never holds up a gateway's other servers.
    """
    allowed = referenced(push, labels)
    out = []
    for name in sorted(requested):
        if not name.startswith(PREFIX):
            continue
        credential = name[len(PREFIX) :]
        if credential.endswith(CA_SUFFIX) and credential[: -len(CA_SUFFIX)] in allowed:
            ca = client_ca(push, namespace, credential[: -len(CA_SUFFIX)])
            if ca is not None:
                out.append({"name": name, "validation_context": {"trusted_ca": _inline(ca)}})
            continue
        if credential not in allowed:
            continue
        pair = key_pair(push, namespace, credential)
        if pair is not None:
            out.append(
                {
                    "name": name,
                    "tls_certificate": {
                        "certificate_chain": _inline(pair.certificate_chain),
                        "private_key": _inline(pair.private_key),
                    },
                }
            )
    return out


def _inline(data: bytes) -> dict[str, str]:
    # Envoy's JSON form of a bytes field is base64.
    return {"inline_bytes": base64.b64encode(data).decode()}
