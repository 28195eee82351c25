"""The type-URL to generator table: what each kind of proxy gets for each xDS type.

Every function is pure: (proxy, push context, requested names) -> typed Envoy resources.
Dicts in Envoy's JSON form are parsed into protos here, once, so a malformed resource
fails in Pilot with a clear message instead of being NACKed by every Envoy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

# Imported for their side effect: json_format resolves an `@type` only for loaded modules.
from envoy.extensions.access_loggers.stream.v3 import stream_pb2  # noqa: F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format, message

from pilot.model import hostname
from pilot.model.push_context import PushContext
from pilot.model.service import Service
from pilot.networking import clusters, endpoints, listeners, mixerfilter, routes, security
from pilot.networking.proxyview import ProxyView

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

Resources = list[tuple[str, message.Message]]
T = TypeVar("T")


def generate(
    proxy: ProxyView, type_url: str, resource_names: Sequence[str], push: PushContext
) -> Resources:
    generator = GENERATORS.get(type_url)
    return generator(proxy, push, resource_names) if generator is not None else []


def build_listeners(proxy: ProxyView, push: PushContext, _: Sequence[str]) -> Resources:
    if proxy.type == "router":
        dicts = [listeners.gateway_listener(proxy.ip, port) for port in _gateway_ports(proxy, push)]
    else:
        inbound = push.index.endpoints_at(proxy.ip)
        mode = security.DISABLE
        if security.has_sds(proxy.metadata):
            port = inbound[0].port if inbound else None
            mode = security.peer_mode(
                push.peer_authentications,
                proxy.namespace,
                proxy.labels,
                port,
                push.mesh.root_namespace,
            )
        authz = security.rbac_filters(
            push.authorization_policies,
            proxy.namespace,
            proxy.labels,
            push.mesh.root_namespace,
            push.mesh.trust_domain,
        )
        dicts = listeners.sidecar_listeners(
            proxy.ip,
            inbound,
            mtls_mode=mode,
            trust_domain=push.mesh.trust_domain,
            authz_filters=authz,
        )
    mixerfilter.add_to_listeners(proxy, push, dicts)
    return [_parse(d, listener_pb2.Listener()) for d in dicts]


def build_clusters(proxy: ProxyView, push: PushContext, _: Sequence[str]) -> Resources:
    services = visible_services(proxy, push)
    mtls = security.has_sds(proxy.metadata)

    def shared() -> Resources:
        dicts = [
            *clusters.outbound_clusters(push, services, mtls=mtls),
            clusters.blackhole_cluster(),
            *mixerfilter.clusters(push),
        ]
        return [_parse(d, cluster_pb2.Cluster()) for d in dicts]

    resources = list(_memo(push, ("cds", mtls, _scope_key(services, push)), shared))
    if proxy.type != "router":
        inbound = clusters.inbound_clusters(push.index.endpoints_at(proxy.ip))
        resources += [_parse(d, cluster_pb2.Cluster()) for d in inbound]
    return resources


def build_routes(proxy: ProxyView, push: PushContext, requested: Sequence[str]) -> Resources:
    wanted = set(requested)
    if proxy.type == "router":
        dicts = [
            routes.gateway_routes(proxy, push, listeners.gateway_listen_port(port), port)
            for port in _gateway_ports(proxy, push)
        ]
        return [
            _parse(d, route_pb2.RouteConfiguration())
            for d in dicts
            if not wanted or d["name"] in wanted
        ]
    services = visible_services(proxy, push)
    # A sidecar's table depends on its namespace (short names, sourceNamespace matches),
    # what it may see, and its labels only where some route matches on sourceLabels.
    labels = frozenset(proxy.labels.items()) if push.uses_source_labels else None
    key = ("rds", proxy.namespace, labels, _scope_key(services, push))
    table = _memo(
        push,
        key,
        lambda: [
            _parse(routes.sidecar_routes(proxy, push, services), route_pb2.RouteConfiguration())
        ],
    )
    return [r for r in table if not wanted or r[0] in wanted]


def build_endpoints(_: ProxyView, push: PushContext, requested: Sequence[str]) -> Resources:
    def assignment(name: str) -> tuple[str, message.Message]:
        return _parse(endpoints.load_assignment(name, push), endpoint_pb2.ClusterLoadAssignment())

    return [_memo(push, ("eds", name), lambda name=name: assignment(name)) for name in requested]


GENERATORS: dict[str, Callable[[ProxyView, PushContext, Sequence[str]], Resources]] = {
    LISTENER: build_listeners,
    CLUSTER: build_clusters,
    ROUTE: build_routes,
    ENDPOINT: build_endpoints,
}


def visible_services(proxy: ProxyView, push: PushContext) -> list[Service]:
    """The services a proxy may call: all, unless a Sidecar resource narrows its egress."""
    services = list(push.services.values())
    if proxy.type == "router":
        return services
    sidecar = push.sidecar_for(proxy.namespace, proxy.labels)
    if sidecar is None or not sidecar.spec.egress:
        return services
    patterns = [h for egress in sidecar.spec.egress for h in egress.hosts]
    return [s for s in services if any(_egress_allows(p, s, proxy.namespace) for p in patterns)]


def _egress_allows(pattern: str, service: Service, proxy_namespace: str) -> bool:
    namespace, _, host = pattern.partition("/")
    if namespace == ".":
        namespace = proxy_namespace
    if namespace not in ("*", service.namespace):
        return False
    return hostname.matches(host, service.hostname)


def _gateway_ports(proxy: ProxyView, push: PushContext) -> list[int]:
    ports = {
        server.port.number
        for gateway in push.gateways_for(proxy.labels)
        for server in gateway.spec.servers
        if server.port.protocol.upper() in ("HTTP", "HTTP2")
    }
    return sorted(ports)


def _memo(push: PushContext, key: tuple[object, ...], build: Callable[[], T]) -> T:
    """Build once per push what every proxy with the same key gets; share the messages."""
    try:
        return push.memo[key]  # type: ignore[return-value]
    except KeyError:
        value = push.memo[key] = build()
        return value


def _scope_key(services: list[Service], push: PushContext) -> tuple[str, ...] | None:
    """None when a proxy sees every service (the common case), else the hostnames it sees."""
    if len(services) == len(push.services):
        return None
    return tuple(sorted(s.hostname for s in services))


def _parse(data: dict[str, Any], target: message.Message) -> tuple[str, message.Message]:
    json_format.ParseDict(data, target)
    name = getattr(target, "name", "") or getattr(target, "cluster_name", "")
    return name, target
