"""The type-URL to generator table: what each kind of proxy gets for each xDS type.

Every function is pure: (proxy, push context, requested names) -> typed Envoy resources, as
a pkg/xds `Resources` (each resource encoded once). Dicts in Envoy's JSON form are parsed
into protos here, once, so a malformed resource fails in Pilot with a clear message instead
of being NACKed by every Envoy.

What is shared is built once per push and handed to every proxy that would get the same:
the outbound clusters of a view of the mesh, the endpoint table, a namespace's route table.
Within them, each piece (a service's clusters, a cluster's endpoints, a virtual host's
routes, a listener set) is kept across pushes in `push.cache` under every input it is made
of (cache.py), so a change rebuilds only the pieces it touches; the endpoint table of a push
is made from the last one by `Resources.replace`, which lets an endpoint push send only the
clusters that changed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2

# Imported for their side effect: json_format resolves an `@type` only for loaded modules.
from envoy.config.trace.v3 import zipkin_pb2  # noqa: F401
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_authn_pb2  # noqa: F401
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.http.set_filter_state.v3 import set_filter_state_pb2  # noqa: F401
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2  # noqa: F401
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2  # noqa: F401
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2  # noqa: F401
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format, message

from pilot.model import hostname
from pilot.model.push_context import PushContext
from pilot.model.service import Service
from pilot.networking import (
    accesslog,
    capture,
    clusters,
    credentials,
    endpoints,
    gateway,
    inbound,
    jwt,
    listeners,
    locality_endpoints,
    mixerfilter,
    names,
    nametable,
    outbound,
    routes,
    security,
    sniffing,
    tracing,
)
from pilot.networking.cache import piece
from pilot.networking.proxyview import ProxyView
from pkg.xds.resources import Encoded, Resource, Resources, encode, field_bytes

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
NAME_TABLE = nametable.NAME_TABLE

T = TypeVar("T")


def generate(
    proxy: ProxyView, type_url: str, resource_names: Collection[str], push: PushContext
) -> Resources:
    generator = GENERATORS.get(type_url)
    if generator is None:
        return Resources(type_url, {})
    return generator(proxy, push, resource_names)


# LDS.


def build_listeners(proxy: ProxyView, push: PushContext, _: Collection[str]) -> Resources:
    if proxy.type == "router":
        # Claim matches in a gateway's routes need the route chosen again after jwt_authn.
        auth = _auth_filters(proxy, push, clear_route_cache=True)
        dicts = gateway.gateway_listeners(proxy, push, auth)
        mixerfilter.add_to_listeners(proxy, push, dicts)
        tracing.apply_tracing(dicts, tracing.hcm_tracing(proxy, push.mesh.mesh_config))
        accesslog.apply_access_log(dicts, accesslog.file_access_log(push.mesh.mesh_config))
        return _resources(LISTENER, [_parse(d, listener_pb2.Listener()) for d in dicts])
    if capture.is_captured(proxy):
        return _captured_listeners(proxy, push)
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
    ports = tuple(sorted({e.port for e in inbound}))
    labels = frozenset(proxy.labels.items())
    trace = tracing.hcm_tracing(proxy, push.mesh.mesh_config)
    trace_key = tracing.config_key(trace)
    logs = accesslog.file_access_log(push.mesh.mesh_config)
    logs_key = accesslog.config_key(logs)
    inputs = (
        ports,
        mode,
        push.authorization_policies,
        push.request_authentications,
        push.jwks,
        proxy.namespace,
        labels,
        push.mesh.root_namespace,
        push.mesh.trust_domain,
        trace_key,
        logs_key,
    )

    def build(ip: str) -> list[tuple[str, message.Message]]:
        authz = _auth_filters(proxy, push)
        dicts = listeners.sidecar_listeners(
            ip,
            inbound,
            mtls_mode=mode,
            trust_domain=push.mesh.trust_domain,
            authz_filters=authz,
        )
        mixerfilter.add_to_listeners(proxy, push, dicts)
        tracing.apply_tracing(dicts, trace)
        accesslog.apply_access_log(dicts, logs)
        return [_parse(d, listener_pb2.Listener()) for d in dicts]

    if mixerfilter.enabled(push):
        # The Mixer filter's config names this workload (its pod, uid, labels): nothing to share.
        return _resources(LISTENER, build(proxy.ip))

    def template() -> list[tuple[str, message.Message]]:
        # Listeners differ between workloads by their address alone once these inputs are
        # equal: built once with a placeholder address, copied for each workload.
        return build(_PLACEHOLDER_IP)

    out = []
    # The tracer's span tags come from the proxy's labels, namespace and metadata: proxies
    # share a template only when their tracing config is the same too.
    key = ("lds-sidecar", ports, mode, proxy.namespace, labels, trace_key, logs_key)
    for name, shared in piece(push.cache, key, inputs, template):
        own = listener_pb2.Listener()
        own.CopyFrom(shared)
        own.address.socket_address.address = proxy.ip
        out.append((name, own))
    return _resources(LISTENER, out)


_PLACEHOLDER_IP = "0.0.0.0"


def _captured_listeners(proxy: ProxyView, push: PushContext) -> Resources:
    """virtualOutbound with a listener per destination, and virtualInbound (outbound.py,
    inbound.py). Their addresses are wildcards, so they are shared: the outbound side by every
    workload that sees the same services under the same policy (and kept across pushes while
    its inputs stay), the inbound side by the replicas of a workload."""
    endpoints = push.index.endpoints_at(proxy.ip)
    services = visible_services(proxy, push)
    policy = capture.outbound_policy(proxy, push)
    sds = security.has_sds(proxy.metadata)
    mode = capture.interception_mode(proxy.metadata)
    trace = tracing.hcm_tracing(proxy, push.mesh.mesh_config)
    logs = accesslog.file_access_log(push.mesh.mesh_config)

    def mode_of(port: int | None) -> str:
        if not sds:
            return security.DISABLE
        return security.peer_mode(
            push.peer_authentications,
            proxy.namespace,
            proxy.labels,
            port,
            push.mesh.root_namespace,
        )

    def finish(dicts: list[dict[str, Any]]) -> list[tuple[str, message.Message]]:
        mixerfilter.add_to_listeners(proxy, push, dicts)
        tracing.apply_tracing(dicts, trace)
        accesslog.apply_access_log(dicts, logs)
        return [_parse(d, listener_pb2.Listener()) for d in dicts]

    def build_outbound() -> list[tuple[str, message.Message]]:
        return finish(outbound.outbound_listeners(proxy, push, services, policy))

    def build_inbound() -> list[tuple[str, message.Message]]:
        listener = inbound.virtual_inbound(
            endpoints,
            mode_of,
            trust_domain=push.mesh.trust_domain,
            http_filters=_auth_filters(proxy, push),
            network_filters=security.rbac_network_filters(
                push.authorization_policies,
                proxy.namespace,
                proxy.labels,
                push.mesh.root_namespace,
                push.mesh.trust_domain,
            ),
            transparent=mode == capture.TPROXY,
            detection_timeout=sniffing.detection_timeout(push.mesh.mesh_config),
        )
        return finish([listener])

    if mixerfilter.enabled(push):
        # The Mixer filter's config names this workload (its pod, uid, labels): nothing to share.
        return _resources(LISTENER, [*build_outbound(), *build_inbound()])
    trace_key = tracing.config_key(trace)
    # tcp and tls routes may match on the caller's labels; HTTP routes live in RDS.
    l4_labels = any(
        m.source_labels
        for vs in push.virtual_services
        for route in (*vs.resource.spec.tcp, *vs.resource.spec.tls)
        for m in route.match
    )
    labels = frozenset(proxy.labels.items())
    logs_key = accesslog.config_key(logs)
    out_key = ("lds-outbound", mode, policy, trace_key, logs_key, _scope_key(services, push),
               labels if l4_labels else None, capture.auto_allocates(proxy.metadata))  # fmt: skip
    out_inputs = (
        tuple(services),
        tuple(push.services.values()),  # destinations named without a port
        tuple(vs.resource for vs in push.virtual_services),
        push.mesh,
    )
    outbound_part = _memo(
        push, out_key, lambda: piece(push.cache, out_key, out_inputs, build_outbound)
    )
    ports = tuple(sorted({(e.port, e.service_port) for e in endpoints}, key=lambda p: p[0]))
    in_key = ("lds-inbound", proxy.namespace, labels, ports, sds, mode, trace_key, logs_key)
    inbound_part = _memo(push, in_key, build_inbound)
    return _resources(LISTENER, [*outbound_part, *inbound_part])


def _auth_filters(
    proxy: ProxyView, push: PushContext, *, clear_route_cache: bool = False
) -> list[dict[str, Any]]:
    """Istio's order: end-user authentication (jwt_authn), then authorization (RBAC)."""
    found = jwt.jwt_filter(
        push.request_authentications,
        proxy.namespace,
        proxy.labels,
        push.mesh.root_namespace,
        push.jwks,
        clear_route_cache=clear_route_cache,
    )
    authz = security.rbac_filters(
        push.authorization_policies,
        proxy.namespace,
        proxy.labels,
        push.mesh.root_namespace,
        push.mesh.trust_domain,
    )
    return [found, *authz] if found else authz


# CDS.


def build_clusters(proxy: ProxyView, push: PushContext, _: Collection[str]) -> Resources:
    services = visible_services(proxy, push)
    mtls = security.has_sds(proxy.metadata)
    shared = _memo(
        push,
        ("cds", mtls, _scope_key(services, push)),
        lambda: _outbound_clusters(push, services, mtls),
    )
    if proxy.type == "router":
        return shared
    local_endpoints = push.index.endpoints_at(proxy.ip)
    captured = capture.is_captured(proxy)

    def own() -> Resources:
        if captured:
            # To the app from 127.0.0.6 (not captured again), and the passthrough clusters.
            bind = clusters.INBOUND_PASSTHROUGH_BIND
            dicts = clusters.inbound_clusters(local_endpoints, bind=bind)
            dicts += clusters.passthrough_clusters(push.mesh.connect_timeout)
        else:
            dicts = clusters.inbound_clusters(local_endpoints)
        return _resources(CLUSTER, [_parse(d, cluster_pb2.Cluster()) for d in dicts])

    inputs = (tuple(local_endpoints), captured, push.mesh.connect_timeout)
    local = piece(push.cache, ("cds-inbound", proxy.ip), inputs, own)
    return Resources.union(CLUSTER, [shared, local])


def _outbound_clusters(push: PushContext, services: list[Service], mtls: bool) -> Resources:
    fragments: list[list[Encoded]] = []
    for service in services:
        rule = push.destination_rule(service.hostname)
        instances = (
            tuple(push.index.endpoints_of(service.hostname, p.number) for p in service.ports)
            if mtls and not service.mesh_external
            else None
        )

        def build(service: Service = service) -> list[Encoded]:
            dicts = clusters.outbound_clusters(push, [service], mtls=mtls)
            return [encode(CLUSTER, _parse(d, cluster_pb2.Cluster())) for d in dicts]

        # The mesh-wide locality setting decides `locality_weighted_lb_config`.
        inputs = (service, rule, push.mesh, instances, push.mesh.mesh_config.locality_lb_setting)
        fragments.append(piece(push.cache, ("cds", service.hostname, mtls), inputs, build))
    fragments.append(piece(push.cache, ("cds-blackhole",), (), _blackhole))
    # Mixer's own clusters, for Mixer addresses that are not services of the mesh.
    mixer_inputs = (push.mesh, mixerfilter.external_addresses(push))
    fragments.append(piece(push.cache, ("cds-mixer",), mixer_inputs, lambda: _mixer_clusters(push)))
    # The tracers' collector (`zipkin`), when MeshConfig turns tracing on.
    collector = (tracing.zipkin_address(push.mesh.mesh_config),)
    fragments.append(piece(push.cache, ("cds-zipkin",), collector, lambda: _zipkin(push)))
    # The same pieces as last push (the usual case for an endpoint or route change): the
    # same set, already sorted and hashed.
    key = ("cds-shared", mtls, _scope_key(services, push))
    latest = push.cache.latest(key) if push.cache is not None else None
    if (
        latest is not None
        and len(latest[0]) == len(fragments)
        and all(a is b for a, b in zip(latest[0], fragments, strict=True))
    ):
        return latest[1]
    shared = Resources.of(CLUSTER, [e for fragment in fragments for e in fragment])
    if push.cache is not None:
        push.cache.keep(key, (fragments, shared))
    return shared


def _mixer_clusters(push: PushContext) -> list[Encoded]:
    return [encode(CLUSTER, _parse(d, cluster_pb2.Cluster())) for d in mixerfilter.clusters(push)]


def _zipkin(push: PushContext) -> list[Encoded]:
    return [
        encode(CLUSTER, _parse(d, cluster_pb2.Cluster()))
        for d in tracing.collector_clusters(push.mesh.mesh_config)
    ]


def _blackhole() -> list[Encoded]:
    return [encode(CLUSTER, _parse(clusters.blackhole_cluster(), cluster_pb2.Cluster()))]


# RDS.


def build_routes(proxy: ProxyView, push: PushContext, requested: Collection[str]) -> Resources:
    wanted = frozenset(requested) if requested else None
    if proxy.type == "router":
        gateway_labels = frozenset(proxy.labels.items())
        tables = [
            _memo(
                push,
                ("rds-gateway", gateway_labels, name),
                functools.partial(_gateway_routes, proxy, push, name, servers),
            )
            for name, servers in gateway.route_tables(proxy, push).items()
        ]
        return _resources(ROUTE, tables).select(wanted)
    services = visible_services(proxy, push)
    if capture.is_captured(proxy):
        return _captured_routes(proxy, push, services, wanted)
    # A sidecar's table depends on its namespace (sourceNamespace matches), its DNS domain
    # (the short names), what it may see, and its labels only where some route matches on
    # sourceLabels.
    labels = frozenset(proxy.labels.items()) if push.uses_source_labels else None
    key = ("rds", proxy.namespace, proxy.domain, labels, _scope_key(services, push))

    def table() -> Resources:
        # The whole table is kept across pushes too, under everything it is made of: the
        # services seen and known, the mesh's VirtualServices, the mesh options.
        inputs = (
            tuple(services),
            tuple(push.services.values()),
            tuple(vs.resource for vs in push.virtual_services),  # bound from these and mesh
            push.mesh,
            # A consistent hash in a DestinationRule is its host's routes' hash_policy.
            tuple(push.destination_rules.values()),
        )
        return piece(
            push.cache,
            key,
            inputs,
            lambda: _resources(ROUTE, [_sidecar_table(proxy, push, services)]),
        )

    return _memo(push, key, table).select(wanted)


def _captured_routes(
    proxy: ProxyView,
    push: PushContext,
    services: list[Service],
    wanted: frozenset[str] | None,
) -> Resources:
    """A captured sidecar's tables, one per HTTP or sniffed port (`"9080"`), each ending in
    the outbound policy's catch-all: `allow_any` to PassthroughCluster, or `block_all`
    (502); and one per sniffed port of a service with an address (`"<host>:<port>"`), its
    one virtual host for every Host, without a catch-all (Istio's tables for sniffing)."""
    policy = capture.outbound_policy(proxy, push)
    ports = sorted(
        {p.number for s in services for p in s.ports if p.protocol.is_http or p.protocol.is_sniffed}
    )
    labels = frozenset(proxy.labels.items()) if push.uses_source_labels else None
    scope = _scope_key(services, push)
    tables = []
    for port in ports:
        if wanted is not None and str(port) not in wanted:
            continue
        key = ("rds-port", port, policy, proxy.namespace, proxy.domain, labels, scope)

        def table(port: int = port) -> tuple[str, message.Message]:
            specs = routes.port_virtual_hosts(proxy, push, services, port)
            return _assembled_table(str(port), specs, proxy, push, _catch_all_host(policy))

        tables.append(_memo(push, key, table))
    for service in services:
        if service.address in ("", outbound.WILDCARD):
            continue
        for service_port in service.ports:
            name = sniffing.route_name(
                service.hostname, service.address, service_port.number, outbound.WILDCARD
            )
            if not service_port.protocol.is_sniffed or (wanted is not None and name not in wanted):
                continue
            sniffed_key = ("rds-sniffed", name, proxy.namespace, proxy.domain, labels, scope)

            def own(
                name: str = name, service: Service = service, port: int = service_port.number
            ) -> tuple[str, message.Message]:
                specs = [
                    dataclasses.replace(spec, domains=("*",))
                    for spec in routes.port_virtual_hosts(proxy, push, [service], port)
                ]
                return _assembled_table(name, specs, proxy, push, b"")

            tables.append(_memo(push, sniffed_key, own))
    return _resources(ROUTE, tables)


def _catch_all_host(policy: str) -> bytes:
    host = routes.ALLOW_ANY_HOST if policy == capture.ALLOW_ANY else routes.BLACKHOLE_HOST
    parsed = _parse(host, route_components_pb2.VirtualHost())[1]
    return field_bytes(0x12, parsed.SerializeToString(deterministic=True))


def _sidecar_table(
    proxy: ProxyView, push: PushContext, services: list[Service]
) -> tuple[str, message.Message]:
    specs = routes.sidecar_virtual_hosts(proxy, push, services)
    blackhole = piece(push.cache, ("rds-blackhole",), (), _blackhole_host)
    return _assembled_table(names.HTTP_PROXY_ROUTE, specs, proxy, push, blackhole)


def _assembled_table(
    name: str,
    specs: Sequence[routes.VirtualHostSpec],
    proxy: ProxyView,
    push: PushContext,
    catch_all: bytes,
) -> tuple[str, message.Message]:
    # Assembled as bytes from pieces encoded once (each virtual host's routes), then parsed
    # once: copying a thousand virtual hosts message by message costs ten times more.
    parts = [field_bytes(0x0A, name.encode())]  # name = 1
    for spec in specs:
        virtual_host = (
            _name_and_domains(spec.name, spec.domains)  # VirtualHost.name = 1, domains = 2
            + _virtual_host_routes(spec, proxy, push)  # routes = 3
        )
        parts.append(field_bytes(0x12, virtual_host))  # virtual_hosts = 2
    parts.append(catch_all)
    parts.append(field_bytes(0x3A, b""))  # validate_clusters = 7: BoolValue false
    config = route_pb2.RouteConfiguration.FromString(b"".join(parts))
    return config.name, config


@functools.lru_cache(maxsize=1 << 16)
def _name_and_domains(name: str, domains: tuple[str, ...]) -> bytes:
    return field_bytes(0x0A, name.encode()) + b"".join(
        field_bytes(0x12, d.encode()) for d in domains
    )


def _blackhole_host() -> bytes:
    host = _parse(routes.BLACKHOLE_HOST, route_components_pb2.VirtualHost())[1]
    return field_bytes(0x12, host.SerializeToString(deterministic=True))


def _virtual_host_routes(
    spec: routes.VirtualHostSpec, proxy: ProxyView, push: PushContext
) -> bytes:
    """The `routes` field of one virtual host, encoded."""
    vs = spec.virtual_service
    labels = frozenset(proxy.labels.items()) if vs and vs.uses_source_labels else None
    namespace = proxy.namespace if vs and vs.uses_source_namespace else None
    # The DestinationRules of the hosts routed to: their consistent hash is the routes'
    # hash_policy.
    inputs: tuple[object, ...] = (push.destination_rule(spec.service.hostname),)
    if vs is not None:
        inputs = (
            vs.resource,
            tuple(push.services.get(push.resolve(h, vs.namespace)) for h in vs.portless_hosts),
            push.mesh,
            tuple(
                push.destination_rule(push.resolve(d.destination.host, vs.namespace))
                for http in vs.resource.spec.http
                for d in http.route
            ),
        )

    def build() -> bytes:
        return b"".join(
            field_bytes(0x1A, _parse(d, route_components_pb2.Route())[1].SerializeToString())
            for d in routes.virtual_host_routes(spec, proxy, push)
        )

    key: Hashable = ("routes", spec.service.hostname, spec.port, vs is None, labels, namespace)
    return piece(push.cache, key, inputs, build)


# EDS.


def build_endpoints(proxy: ProxyView, push: PushContext, requested: Collection[str]) -> Resources:
    table = _memo(push, ("eds-table",), lambda: _endpoint_table(push))
    wanted = frozenset(requested)
    local = locality_endpoints.of_push(push)
    if local:
        # Clusters whose endpoints this proxy sees by its locality; the rest from the table.
        own, rest = locality_endpoints.split(push, local, wanted)
        if own:
            return Resources.union(
                ENDPOINT,
                [
                    _shared_endpoints(push, table, rest),
                    locality_endpoints.for_proxy(proxy, push, local, own),
                ],
            )
    return _shared_endpoints(push, table, wanted)


def _shared_endpoints(push: PushContext, table: Resources, wanted: frozenset[str]) -> Resources:
    selected = table.select(wanted)
    if len(selected) == len(wanted):
        return selected  # every name asked for is in the table (the usual case)
    missing = wanted - table.names
    # Clusters outside the table (unknown, or a subset no DestinationRule declares) get an
    # empty assignment, so Envoy stops waiting for them.
    extra = [
        _memo(push, ("eds", name), functools.partial(_assignment, name, push))
        for name in sorted(missing)
    ]
    return Resources.union(ENDPOINT, [selected, Resources.of(ENDPOINT, extra)])


def _gateway_routes(
    proxy: ProxyView, push: PushContext, name: str, servers: list[gateway.BoundServer]
) -> Resource:
    listen_port = listeners.gateway_listen_port(servers[0].port)
    table = routes.gateway_routes(
        proxy, push, name, listen_port, [(s.gateway, s.server) for s in servers]
    )
    return _parse(table, route_pb2.RouteConfiguration())


# SDS.


def build_secrets(proxy: ProxyView, push: PushContext, requested: Collection[str]) -> Resources:
    """A gateway's `credentialName` certificates (`kubernetes://...`), from the Secrets in its
    namespace (credentials.py); a sidecar's certificates come from its node agent."""
    if proxy.type != "router":
        return Resources(SECRET, {})
    dicts = credentials.sds_secrets(push, proxy.namespace, proxy.labels, requested)
    return _resources(SECRET, [_parse(d, secret_pb2.Secret()) for d in dicts])


def _endpoint_table(push: PushContext) -> Resources:
    """Every outbound cluster's endpoints (each port, plain and per subset), made from the
    previous push's table so that the clusters that changed are known. When only the
    registries moved since then, only the hostnames they changed are looked at."""
    latest = push.cache.latest("eds-table") if push.cache is not None else None
    hosts: frozenset[str] | None = None
    if latest is not None and push.config_id is not None and latest[2] == push.config_id:
        hosts = push.index.changed_since(latest[3])
    if latest is not None and hosts is not None:
        groups = dict(latest[1])
        for key in [k for k in groups if k[0] in hosts]:
            del groups[key]
        for hostname in hosts:
            service = push.services.get(hostname)
            if service is not None:
                _endpoint_groups(push, service, groups)
    else:
        groups = {}
        for service in push.services.values():
            _endpoint_groups(push, service, groups)
    if latest is None:
        table = Resources.of(ENDPOINT, [e for group in groups.values() for e in group])
    else:
        previous, previous_groups = latest[0], latest[1]
        changed: list[Encoded] = []
        removed: list[str] = []
        for key in groups.keys() | previous_groups.keys():
            group, before = groups.get(key), previous_groups.get(key)
            if group is before:
                continue
            # Rebuilt assignments with the same content (a subset whose endpoints did not
            # move) are not changes: the previous table keeps them.
            changed += [
                e
                for e in group or ()
                if (old := previous.get(e.name)) is None or old.digest != e.digest
            ]
            kept = {e.name for e in group or ()}
            removed += [e.name for e in before or () if e.name not in kept]
        table = previous.replace(changed, removed) if changed or removed else previous
    if push.cache is not None:
        push.cache.keep("eds-table", (table, groups, push.config_id, push.index.generation))
    return table


def _endpoint_groups(
    push: PushContext, service: Service, groups: dict[tuple[str, int], tuple[Encoded, ...]]
) -> None:
    """Put the assignments of each port of `service` (kept in the cache) in `groups`."""
    rule = push.destination_rule(service.hostname)
    for port in service.ports:
        instances = push.index.endpoints_of(service.hostname, port.number)
        inputs = (instances, rule, push.peer_authentications, push.mesh.root_namespace)

        def build(port: int = port.number) -> tuple[Encoded, ...]:
            return tuple(
                _assignment(name, push)
                for name in names.outbound_clusters_of_port(service, port, rule)
            )

        key = (service.hostname, port.number)
        groups[key] = piece(push.cache, ("eds", *key), inputs, build)


def _assignment(name: str, push: PushContext) -> Encoded:
    return encode(ENDPOINT, Resource(name, endpoints.load_assignment(name, push)))


# NDS.


def build_name_table(proxy: ProxyView, push: PushContext, _: Collection[str]) -> Resources:
    """One unnamed NameTable for a sidecar's agent (Istio sends it only to sidecars)."""
    if proxy.type != "sidecar":
        return Resources(NAME_TABLE, {})
    table = nametable.build_name_table(proxy, push, visible_services(proxy, push))
    return _resources(NAME_TABLE, [("", table)])


GENERATORS: dict[str, Callable[[ProxyView, PushContext, Collection[str]], Resources]] = {
    LISTENER: build_listeners,
    CLUSTER: build_clusters,
    ROUTE: build_routes,
    ENDPOINT: build_endpoints,
    SECRET: build_secrets,
    NAME_TABLE: build_name_table,
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


def _resources(type_url: str, resources: Sequence[tuple[str, message.Message]]) -> Resources:
    return Resources.of(type_url, [Resource(n, m) for n, m in resources])


def _parse(data: dict[str, Any], target: message.Message) -> Resource:
    json_format.ParseDict(data, target)
    name = getattr(target, "name", "") or getattr(target, "cluster_name", "")
    return Resource(name, target)
