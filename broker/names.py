"""How the broker names what it keeps and creates, from the platform's ids.

Platform ids are any strings (GUIDs in practice, but the spec allows anything), while
Kubernetes names, label values and SPIFFE service accounts are short DNS labels. So every id
becomes a fixed-length key (the start of its SHA-256), and every name is built from keys:
the same ids always give the same names, which makes each write safe to repeat.
"""

from __future__ import annotations

import hashlib

MANAGED_BY = "app.kubernetes.io/managed-by"
BROKER = "istio-broker"
INSTANCE_LABEL = "broker.istio.io/instance"
_KEY_HEX = 16  # 64 bits: collisions need billions of instances


def _key(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:_KEY_HEX]


def instance_key(instance_id: str) -> str:
    return _key("instance", instance_id)


def binding_key(instance_id: str, binding_id: str) -> str:
    # Binding ids are unique per instance (409 is "same id, same instance"), so key by both.
    return _key("binding", instance_id, binding_id)


def instance_record(instance_id: str) -> str:
    return f"osb-{instance_key(instance_id)}"


def binding_record(instance_id: str, binding_id: str) -> str:
    return f"osb-{instance_key(instance_id)}-{binding_key(instance_id, binding_id)}"


def owned(instance_id: str, what: str = "") -> str:
    """The name of a resource an instance owns: `osb-<key>` or `osb-<key>-<what>`."""
    base = f"osb-{instance_key(instance_id)}"
    return f"{base}-{what}" if what else base


def service_account(instance_id: str, binding_id: str) -> str:
    """The binding's service account: `osb-` (every binding identity starts so, which the
    broker's fences match by prefix), its instance's key, its own."""
    return f"osb-{instance_key(instance_id)}-{binding_key(instance_id, binding_id)}"


def spiffe_id(trust_domain: str, namespace: str, instance_id: str, binding_id: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account(instance_id, binding_id)}"


def principal(spiffe: str) -> str:
    """An AuthorizationPolicy principal is the SPIFFE id without its scheme."""
    return spiffe.removeprefix("spiffe://")


def labels(instance_id: str) -> dict[str, str]:
    return {MANAGED_BY: BROKER, INSTANCE_LABEL: instance_key(instance_id)}
