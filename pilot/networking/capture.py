"""How a sidecar's traffic reaches it, and what it does with destinations it does not know.

Istio's node metadata `INTERCEPTION_MODE` says how the pod's traffic is captured: REDIRECT
(iptables' nat table, istio-iptables) and TPROXY send every TCP connection to the capture
ports 15001 (outbound) and 15006 (inbound) with its original destination kept, so Pilot
generates the capture listeners (outbound.py, inbound.py). NONE is a pod without iptables:
the app uses its sidecar as an HTTP proxy (listeners.py). Istio reads a missing mode as
REDIRECT; here every agent states its mode (the loopback platform's says NONE), and a node
without one keeps the proxy listeners that every proxy had before capture existed.

`outboundTrafficPolicy` (MeshConfig, overridden by the workload's Sidecar) decides where
traffic to a destination outside the registry goes: ALLOW_ANY to `PassthroughCluster`
(the original destination), REGISTRY_ONLY to `BlackHoleCluster`.

A proxy whose agent proxies DNS (`DNS_CAPTURE`) and asked for `DNS_AUTO_ALLOCATE` sees a
ServiceEntry host without addresses at its auto-allocated address (Istio's
GetAddressForProxy): its DNS proxy answers with it, and its listeners are bound to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.mesh.v1alpha1 import config_pb2
from pilot.model.push_context import PushContext
from pilot.model.service import Service
from pilot.networking.proxyview import ProxyView

REDIRECT = "REDIRECT"
TPROXY = "TPROXY"
NONE = "NONE"

_Mode = config_pb2.MeshConfig.OutboundTrafficPolicy.Mode
ALLOW_ANY = "ALLOW_ANY"
REGISTRY_ONLY = "REGISTRY_ONLY"


def interception_mode(metadata: Mapping[str, Any]) -> str:
    mode = str(metadata.get("INTERCEPTION_MODE", NONE) or NONE).upper()
    return mode if mode in (REDIRECT, TPROXY) else NONE


def is_captured(proxy: ProxyView) -> bool:
    """Whether iptables (or TPROXY) sends the workload's connections to its sidecar."""
    return proxy.type == "sidecar" and interception_mode(proxy.metadata) != NONE


def outbound_policy(proxy: ProxyView, push: PushContext) -> str:
    """ALLOW_ANY or REGISTRY_ONLY: the workload's Sidecar's, else the mesh's (default
    ALLOW_ANY, as Istio's). ALLOW_ANY_DYNAMIC_DNS passes unknown hosts on, as ALLOW_ANY."""
    sidecar = push.sidecar_for(proxy.namespace, proxy.labels)
    if sidecar is not None and sidecar.spec.HasField("outbound_traffic_policy"):
        return _name(sidecar.spec.outbound_traffic_policy.mode)
    mesh = push.mesh.mesh_config
    if mesh.HasField("outbound_traffic_policy"):
        return _name(mesh.outbound_traffic_policy.mode)
    return ALLOW_ANY


def _name(mode: int) -> str:
    return REGISTRY_ONLY if mode == _Mode.REGISTRY_ONLY else ALLOW_ANY


def _true(metadata: Mapping[str, Any], key: str) -> bool:
    return str(metadata.get(key, "")).lower() == "true"


def auto_allocates(metadata: Mapping[str, Any]) -> bool:
    """Whether the proxy uses auto-allocated addresses (both of Istio's flags set)."""
    return _true(metadata, "DNS_CAPTURE") and _true(metadata, "DNS_AUTO_ALLOCATE")


def service_address(service: Service, auto_allocated: bool) -> str:
    """The service's address for a proxy (0.0.0.0 when it has none)."""
    if service.address not in ("", "0.0.0.0"):
        return service.address
    if auto_allocated and service.auto_allocated_address:
        return service.auto_allocated_address
    return "0.0.0.0"
