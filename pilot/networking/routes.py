"""RDS: the sidecar's HTTP proxy route table and the gateways' route tables."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from api.networking.v1alpha3 import gateway_pb2
from api.networking.v1alpha3 import virtual_service_pb2 as vs_pb2
from pilot.model import hostname
from pilot.model.push_context import MESH_GATEWAY, BoundVirtualService, PushContext
from pilot.model.service import Service, labels_match
from pilot.networking import httproute, names
from pilot.networking.proxyview import ProxyView

_BLACKHOLE_HOST = {
    # Hosts outside the service registry go nowhere (Istio's REGISTRY_ONLY), with a 502.
    "name": "block_all",
    "domains": ["*"],
    "routes": [{"name": "block_all", "match": {"prefix": "/"}, "direct_response": {"status": 502}}],
}


# Hosts outside the registry under ALLOW_ANY: to wherever the caller was going.
ALLOW_ANY_HOST = {
    "name": names.ALLOW_ANY_HOST,
    "domains": ["*"],
    "routes": [
        {
            "name": names.ALLOW_ANY_HOST,
            "match": {"prefix": "/"},
            "route": {"cluster": names.PASSTHROUGH_CLUSTER, "timeout": "0s"},
        }
    ],
}


@dataclasses.dataclass(frozen=True)
class VirtualHostSpec:
    """One virtual host of a sidecar's table: which service port, under which names, routed
    by which VirtualService (None: the default route)."""

    name: str
    domains: tuple[str, ...]
    service: Service
    port: int
    virtual_service: BoundVirtualService | None


def sidecar_virtual_hosts(
    proxy: ProxyView, push: PushContext, services: Iterable[Service]
) -> list[VirtualHostSpec]:
    """One virtual host per (service, HTTP port), named every way a caller may name it."""
    used: set[str] = set()
    hosts = []
    for service in sorted(services, key=lambda s: hostname.sort_key(s.hostname)):
        http_ports = [p for p in service.ports if p.protocol.is_http]
        for port in http_ports:
            bare = port.number == 80 or len(http_ports) == 1
            candidates = _candidate_domains(service.hostname, port.number, bare, proxy.domain)
            if used.isdisjoint(candidates):
                domains = candidates
            else:
                domains = tuple(d for d in candidates if d not in used)
            if not domains:
                continue
            used.update(domains)
            hosts.append(
                VirtualHostSpec(
                    name=f"{service.hostname}:{port.number}",
                    domains=domains,
                    service=service,
                    port=port.number,
                    virtual_service=push.virtual_service_for(service.hostname, MESH_GATEWAY),
                )
            )
    return hosts


def port_virtual_hosts(
    proxy: ProxyView, push: PushContext, services: Iterable[Service], port: int
) -> list[VirtualHostSpec]:
    """The virtual hosts of a captured sidecar's table for one port (RDS name `"<port>"`):
    each service with an HTTP or sniffed port of that number, under Istio's domains: every
    name a caller may use, with and without the port, and the service's address."""
    used: set[str] = set()
    hosts = []
    for service in sorted(services, key=lambda s: hostname.sort_key(s.hostname)):
        service_port = service.port(port)
        if service_port is None or not (
            service_port.protocol.is_http or service_port.protocol.is_sniffed
        ):
            continue
        candidates = _port_domains(service.hostname, service.address, port, proxy.domain)
        domains = tuple(d for d in candidates if d not in used)
        if not domains:
            continue
        used.update(domains)
        hosts.append(
            VirtualHostSpec(
                name=f"{service.hostname}:{port}",
                domains=domains,
                service=service,
                port=port,
                virtual_service=push.virtual_service_for(service.hostname, MESH_GATEWAY),
            )
        )
    return hosts


@functools.lru_cache(maxsize=1 << 16)
def _port_domains(host: str, address: str, port: int, proxy_domain: str) -> tuple[str, ...]:
    """Istio's domains of a service in a per-port table; a pure function, so remembered."""
    domains = hostname.aliases(host, port, include_bare=True, proxy_domain=proxy_domain)
    if address not in ("", "0.0.0.0"):
        domains += [address, f"{address}:{port}"]
    return tuple(domains)


@functools.lru_cache(maxsize=1 << 16)
def _candidate_domains(host: str, port: int, bare: bool, proxy_domain: str) -> tuple[str, ...]:
    """Every name a caller in `proxy_domain` may use for a service port.
    (A pure function of its arguments, so remembering its answers changes nothing.)"""
    return tuple(hostname.aliases(host, port, include_bare=bare, proxy_domain=proxy_domain))


def virtual_host_routes(
    spec: VirtualHostSpec, proxy: ProxyView, push: PushContext
) -> list[dict[str, Any]]:
    vs = spec.virtual_service
    if vs is not None:
        found = _vs_routes(vs, proxy, push, spec.port, MESH_GATEWAY)
        if found:
            return found
    # No VirtualService, or one with no HTTP route for this port (only tcp or tls routes,
    # or matches on other ports): the service's default route, as Istio gives it.
    cluster = names.outbound_cluster(spec.service.hostname, spec.port)
    return [httproute.default_route(cluster, push)]


BLACKHOLE_HOST = _BLACKHOLE_HOST


def sidecar_routes(
    proxy: ProxyView, push: PushContext, services: Iterable[Service]
) -> dict[str, Any]:
    """The sidecar's route table: its virtual hosts, then the catch-all that refuses."""
    hosts = [
        {
            "name": spec.name,
            "domains": list(spec.domains),
            "routes": virtual_host_routes(spec, proxy, push),
        }
        for spec in sidecar_virtual_hosts(proxy, push, services)
    ]
    hosts.append(_BLACKHOLE_HOST)
    return {"name": names.HTTP_PROXY_ROUTE, "virtual_hosts": hosts, "validate_clusters": False}


def gateway_routes(
    proxy: ProxyView,
    push: PushContext,
    route_name: str,
    listen_port: int,
    servers: Sequence[tuple[str, gateway_pb2.Server]],
) -> dict[str, Any]:
    """The table `route_name`: virtual hosts of every VirtualService bound to the Gateway of
    each (`<ns>/<name>`, server) whose hosts the server serves.

    A server with `tls.httpsRedirect` answers every request with a 301 to https (Envoy's
    `require_tls`), as Istio's HTTP-to-HTTPS redirect does; it gets a virtual host for its
    own hosts even when no VirtualService is bound, since the redirect needs no route.
    """
    used: set[str] = set()
    hosts = []
    for gateway_name, server in servers:
        redirect = server.HasField("tls") and server.tls.https_redirect
        server_hosts = [h.split("/", 1)[-1] for h in server.hosts]
        found: list[str] = []
        for vs in push.virtual_services_for(gateway_name):
            for host in vs.resource.spec.hosts:
                if not any(hostname.matches(host, h) for h in server_hosts):
                    continue
                found.append(host)
                domains = _gateway_domains(host, listen_port, used)
                if not domains:
                    continue
                host_config: dict[str, Any] = {
                    "name": f"{host}:{listen_port}",
                    "domains": domains,
                    "routes": _vs_routes(vs, proxy, push, server.port.number, gateway_name),
                }
                if redirect:
                    host_config["require_tls"] = "ALL"
                hosts.append(host_config)
        if redirect and not found:
            for host in server_hosts:
                domains = _gateway_domains(host, listen_port, used)
                if domains:
                    hosts.append(
                        {
                            "name": f"{host}:{listen_port}",
                            "domains": domains,
                            "require_tls": "ALL",
                        }
                    )
    return {"name": route_name, "virtual_hosts": hosts, "validate_clusters": False}


def _gateway_domains(host: str, listen_port: int, used: set[str]) -> list[str]:
    """A gateway host's domains (with and without the listener's port) not yet taken."""
    domains = [
        d for d in ([host] if host == "*" else [host, f"{host}:{listen_port}"]) if d not in used
    ]
    used.update(domains)
    return domains


def _vs_routes(
    vs: BoundVirtualService, proxy: ProxyView, push: PushContext, port: int, gateway: str
) -> list[dict[str, Any]]:
    def applies(match: vs_pb2.HTTPMatchRequest) -> bool:
        return (
            (not match.port or match.port == port)
            and labels_match(dict(match.source_labels), proxy.labels)
            and (not match.gateways or gateway in _qualified(match.gateways, vs.namespace))
            and (not match.source_namespace or match.source_namespace == proxy.namespace)
        )

    routes: list[dict[str, Any]] = []
    for i, http in enumerate(vs.resource.spec.http):
        routes += httproute.translate(
            http, namespace=vs.namespace, push=push, applies=applies, index=i
        )
    return routes


def _qualified(gateways: Iterable[str], namespace: str) -> set[str]:
    return {g if g == MESH_GATEWAY or "/" in g else f"{namespace}/{g}" for g in gateways}
