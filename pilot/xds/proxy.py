"""The proxy at the other end of an ADS stream, parsed from the Envoy `Node` it first sends.

Node id format (every Istio version): `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`,
e.g. `sidecar~10.60.1.6~productpage-v1-5d9b8c.default~default.svc.cluster.local`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from pkg.xds.server import InvalidStreamError

PROXY_TYPES = ("sidecar", "router")


class InvalidNodeError(InvalidStreamError):
    """The node id (or metadata) cannot identify a proxy; the stream is refused."""


@dataclass(frozen=True)
class Proxy:
    type: str
    ip: str
    id: str
    domain: str
    namespace: str
    pod: str
    labels: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    cluster: str = ""
    node_id: str = ""
    # The node's own locality (`region/zone/subzone`), which its bootstrap reads from the
    # pod's `istio-locality` label; Pilot prefers what its registry says (locality_endpoints).
    locality: str = ""


def parse_node(node: base_pb2.Node) -> Proxy:
    """The Proxy described by `node`, or InvalidNodeError saying what is wrong with it."""
    node_id = node.id
    parts = node_id.split("~")
    if len(parts) != 4:
        raise InvalidNodeError(
            f"node id {node_id!r}: want 4 fields <type>~<ip>~<pod>.<namespace>~<domain>, "
            f"got {len(parts)}"
        )
    kind, ip, ident, domain = parts
    if kind not in PROXY_TYPES:
        raise InvalidNodeError(
            f"node id {node_id!r}: proxy type {kind!r} is not one of {', '.join(PROXY_TYPES)}"
        )
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidNodeError(f"node id {node_id!r}: {ip!r} is not an IP address") from None
    if not ident:
        raise InvalidNodeError(f"node id {node_id!r}: empty <pod>.<namespace> field")

    metadata: dict[str, Any] = json_format.MessageToDict(node.metadata)
    # Pod names may hold dots, namespaces may not: the namespace follows the last dot.
    id_pod, dot, id_namespace = ident.rpartition(".")
    if not dot:
        id_pod, id_namespace = ident, ""
    namespace = _string(metadata, "NAMESPACE", node_id) or id_namespace
    pod = _string(metadata, "NAME", node_id) or id_pod
    if not namespace:
        raise InvalidNodeError(
            f"node id {node_id!r}: no namespace (want <pod>.<namespace> or metadata NAMESPACE)"
        )
    return Proxy(
        type=kind,
        ip=ip,
        id=ident,
        domain=domain,
        namespace=namespace,
        pod=pod,
        labels=_labels(metadata, node_id),
        metadata=metadata,
        cluster=node.cluster,
        node_id=node_id,
        locality=_locality(node.locality),
    )


def _string(metadata: dict[str, Any], key: str, node_id: str) -> str:
    value = metadata.get(key, "")
    if not isinstance(value, str):
        raise InvalidNodeError(f"node {node_id!r}: metadata {key} must be a string, got {value!r}")
    return value


def _labels(metadata: dict[str, Any], node_id: str) -> dict[str, str]:
    labels = metadata.get("LABELS", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidNodeError(
            f"node {node_id!r}: metadata LABELS must map strings to strings, got {labels!r}"
        )
    return dict(labels)


def _locality(locality: base_pb2.Locality) -> str:
    if not (locality.region or locality.zone or locality.sub_zone):
        return ""
    return f"{locality.region}/{locality.zone}/{locality.sub_zone}"
