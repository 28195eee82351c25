"""VirtualService `tcp` and `tls` routes of the mesh: tcp_proxy filters for a sidecar.

Istio's `buildSidecarOutboundTCPTLSFilterChainOpts`: for a service port that is not HTTP, the
VirtualService bound to the mesh for its host decides where a connection goes. A `tls` route
(only on TLS and HTTPS ports) matches the SNI the client sends (`sniHosts`, read by the TLS
inspector) and becomes a filter chain with `server_names`; a `tcp` route matches on the
port (and the destination subnets) and becomes the default chain. Several destinations are
Envoy's `weighted_clusters`, weighed per connection; a destination of weight 0 gets none
(Istio leaves it out). With no route that applies, the connection goes to the service's own
cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from api.networking.v1alpha3 import virtual_service_pb2 as vs_pb2
from pilot.model.push_context import MESH_GATEWAY, BoundVirtualService, PushContext
from pilot.model.service import Service, labels_match
from pilot.networking import names
from pilot.networking.proxyview import ProxyView

TCP_PROXY = "envoy.filters.network.tcp_proxy"
TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


@dataclasses.dataclass(frozen=True)
class TcpChain:
    """One filter chain of a TCP or TLS listener: the SNI names it takes (none: any) and the
    weighted clusters a connection goes to."""

    server_names: tuple[str, ...]
    clusters: tuple[tuple[str, int], ...]
    destination_prefixes: tuple[str, ...] = ()

    def filter(self) -> dict[str, Any]:
        return tcp_proxy(self.clusters)


def tcp_proxy(clusters: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """A tcp_proxy filter to one cluster, or weighted over several (weight 0: left out)."""
    kept = [(name, weight) for name, weight in clusters if weight or len(clusters) == 1]
    kept = kept or [clusters[0]]
    config: dict[str, Any] = {"@type": TCP_PROXY_TYPE, "stat_prefix": kept[0][0]}
    if len(kept) == 1:
        config["cluster"] = kept[0][0]
    else:
        config["weighted_clusters"] = {
            "clusters": [{"name": name, "weight": weight} for name, weight in kept]
        }
    return {"name": TCP_PROXY, "typed_config": config}


def service_chains(
    proxy: ProxyView, push: PushContext, service: Service, port: int, *, tls: bool
) -> list[TcpChain]:
    """The filter chains for connections to (service, port): SNI chains from `tls` routes
    (when the port speaks TLS), then the default chain from the first `tcp` route that
    applies, else the service's own cluster."""
    own = ((names.outbound_cluster(service.hostname, port), 100),)
    vs = push.virtual_service_for(service.hostname, MESH_GATEWAY)
    if vs is None:
        return [TcpChain((), own)]
    chains: list[TcpChain] = []
    if tls:
        chains += _tls_chains(vs, proxy, push, port)
    default = _tcp_default(vs, proxy, push, port)
    chains.append(default or TcpChain((), own))
    return chains


def _tls_chains(
    vs: BoundVirtualService, proxy: ProxyView, push: PushContext, port: int
) -> list[TcpChain]:
    chains = []
    for route in vs.resource.spec.tls:
        clusters = _clusters(route.route, vs, push)
        if not clusters:
            continue
        for match in route.match:
            if _applies(match.port, match.gateways, match.source_labels, vs, proxy, port):
                prefixes = tuple(match.destination_subnets)
                chains.append(TcpChain(tuple(match.sni_hosts), clusters, prefixes))
    return chains


def _tcp_default(
    vs: BoundVirtualService, proxy: ProxyView, push: PushContext, port: int
) -> TcpChain | None:
    for route in vs.resource.spec.tcp:
        clusters = _clusters(route.route, vs, push)
        if not clusters:
            continue
        if not route.match:
            return TcpChain((), clusters)
        for match in route.match:
            if _applies(match.port, match.gateways, match.source_labels, vs, proxy, port):
                return TcpChain((), clusters, tuple(match.destination_subnets))
    return None


def _applies(
    match_port: int,
    gateways: Iterable[str],
    source_labels: Any,
    vs: BoundVirtualService,
    proxy: ProxyView,
    port: int,
) -> bool:
    if match_port and match_port != port:
        return False
    gateways = list(gateways)
    if gateways and MESH_GATEWAY not in gateways:
        return False
    return labels_match(dict(source_labels), proxy.labels)


def _clusters(
    destinations: Iterable[vs_pb2.RouteDestination], vs: BoundVirtualService, push: PushContext
) -> tuple[tuple[str, int], ...]:
    found = [
        (names.cluster_for(d.destination, vs.namespace, push), d.weight or 0) for d in destinations
    ]
    if len(found) == 1:
        return ((found[0][0], 100),)
    return tuple(found)
