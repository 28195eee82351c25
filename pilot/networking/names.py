"""Envoy resource names, in Istio's formats (istio-facts 1.7)."""

from __future__ import annotations

from api.networking.v1alpha3 import virtual_service_pb2 as vs_pb2
from pilot.model.push_context import PushContext
from pilot.model.service import Service
from pkg.config.resource import Resource

VIRTUAL_OUTBOUND = "virtualOutbound"
VIRTUAL_INBOUND = "virtualInbound"
BLACKHOLE_CLUSTER = "BlackHoleCluster"
# Unknown destinations under ALLOW_ANY: wherever the caller was going (ORIGINAL_DST).
PASSTHROUGH_CLUSTER = "PassthroughCluster"
# Inbound connections to ports no service declares, to the app from Istio's 127.0.0.6.
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"
# Istio's names for the capture listeners' fixed filter chains and virtual hosts.
VIRTUAL_OUTBOUND_CATCHALL = "virtualOutbound-catchall-tcp"
VIRTUAL_OUTBOUND_BLACKHOLE = "virtualOutbound-blackhole"
VIRTUAL_INBOUND_BLACKHOLE = "virtualInbound-blackhole"
ALLOW_ANY_HOST = "allow_any"
BLOCK_ALL_HOST = "block_all"
OUTBOUND_PORT = 15001
INBOUND_PORT = 15006
# The sidecar's outbound listener is the app's HTTP proxy; its one route table is named
# after Istio 0.2's catch-all proxy route.
HTTP_PROXY_ROUTE = "http_proxy"
INBOUND_ROUTE = "inbound|http|15006"


def outbound_cluster(hostname: str, port: int, subset: str = "") -> str:
    return f"outbound|{port}|{subset}|{hostname}"


def listener_name(address: str, port: int) -> str:
    """A per-destination outbound listener (`0.0.0.0_9080`, `10.0.0.5_3306`), or an
    inbound filter chain (`0.0.0.0_9080`)."""
    return f"{address}_{port}"


def inbound_cluster(port: int) -> str:
    return f"inbound|{port}||"


def parse_cluster(name: str) -> tuple[str, int, str, str] | None:
    """(direction, port, subset, hostname) of an Istio cluster name, or None for others."""
    parts = name.split("|")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2], parts[3]


def outbound_clusters_of(service: Service, push: PushContext) -> list[str]:
    """Every outbound cluster of a service: each port, plain and per DestinationRule subset."""
    rule = push.destination_rule(service.hostname)
    return [n for p in service.ports for n in outbound_clusters_of_port(service, p.number, rule)]


def outbound_clusters_of_port(service: Service, port: int, rule: Resource | None) -> list[str]:
    subsets = [""] + ([s.name for s in rule.spec.subsets] if rule is not None else [])
    return [outbound_cluster(service.hostname, port, s) for s in subsets]


def gateway_route(port: int) -> str:
    return f"http.{port}"


def cluster_for(destination: vs_pb2.Destination, namespace: str, push: PushContext) -> str:
    """The cluster a VirtualService destination means, read in the VirtualService's namespace.

    A destination without a port uses the service's only port, as Istio allows.
    """
    host = push.resolve(destination.host, namespace)
    port = destination.port.number
    if not port:
        service = push.services.get(host)
        port = service.ports[0].number if service is not None and len(service.ports) == 1 else 80
    return outbound_cluster(host, port, destination.subset)
