"""PushContext: one immutable view of the mesh that a whole push generates from.

Built from a snapshot of the config store and a `ServiceIndex` of the registries whenever
either changes, then shared read-only by every generator for every proxy (Istio's
`model.PushContext`). Nothing here talks to the network or knows a registry: the caller
hands in resources and the index, generators read them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from api.mesh.v1alpha1 import config_pb2
from pilot.model import hostname
from pilot.model.index import ServiceIndex
from pilot.model.service import DOMAIN_SUFFIX, Service, labels_match
from pkg.config.resource import Resource

MESH_GATEWAY = "mesh"
T = TypeVar("T")


class PieceCache(Protocol):
    """Where generators keep pieces across pushes (pilot/networking/cache.py)."""

    def get(self, key: Hashable, inputs: tuple[object, ...], build: Callable[[], T]) -> T: ...

    def latest(self, key: Hashable) -> Any: ...

    def keep(self, key: Hashable, value: object) -> None: ...


@dataclasses.dataclass(frozen=True)
class MeshOptions:
    domain_suffix: str = DOMAIN_SUFFIX
    connect_timeout: float = 10.0  # seconds, MeshConfig connectTimeout
    root_namespace: str = "istio-system"
    trust_domain: str = "cluster.local"
    # The MeshConfig Pilot was started with (--mesh-config), for fields read where used.
    mesh_config: config_pb2.MeshConfig = dataclasses.field(
        default_factory=config_pb2.MeshConfig, compare=False
    )
    # Where every proxy's machine has the Mixer filter module (--mixer-filter-wasm).
    mixer_filter_wasm: str = ""
    # Off only to measure what the filters' check cache saves (--disable-mixer-check-cache).
    mixer_check_cache: bool = True


@dataclasses.dataclass(frozen=True)
class BoundVirtualService:
    """A VirtualService with its hosts and gateways resolved to full names."""

    resource: Resource
    hosts: tuple[str, ...]
    gateways: frozenset[str]

    @property
    def namespace(self) -> str:
        return self.resource.metadata.namespace

    @functools.cached_property
    def uses_source_labels(self) -> bool:
        return any(m.source_labels for http in self.resource.spec.http for m in http.match)

    @functools.cached_property
    def uses_source_namespace(self) -> bool:
        return any(m.source_namespace for http in self.resource.spec.http for m in http.match)

    @functools.cached_property
    def portless_hosts(self) -> tuple[str, ...]:
        """Destination hosts named without a port: their service's ports decide the cluster."""
        hosts = []
        for http in self.resource.spec.http:
            destinations = [d.destination for d in http.route]
            destinations += [m.destination for m in http.mirrors]
            if http.HasField("mirror"):
                destinations.append(http.mirror)
            hosts += [d.host for d in destinations if not d.port.number]
        return tuple(sorted(set(hosts)))


# (by exact host: [(position, vs)], wildcard hosts: [(position, vs, patterns)])
_HostIndex = tuple[
    dict[str, list[tuple[int, BoundVirtualService]]],
    list[tuple[int, BoundVirtualService, tuple[str, ...]]],
]


@dataclasses.dataclass(frozen=True)
class PushContext:
    mesh: MeshOptions
    index: ServiceIndex
    virtual_services: tuple[BoundVirtualService, ...]
    destination_rules: Mapping[str, Resource]  # by resolved host
    gateways: tuple[Resource, ...]
    sidecars: tuple[Resource, ...]
    peer_authentications: tuple[Resource, ...] = ()
    authorization_policies: tuple[Resource, ...] = ()
    request_authentications: tuple[Resource, ...] = ()
    # The key sets Pilot fetched for the RequestAuthentications' jwksUris, by URI.
    jwks: Mapping[str, str] = dataclasses.field(default_factory=dict)
    quota_specs: tuple[Resource, ...] = ()
    quota_spec_bindings: tuple[Resource, ...] = ()
    # Kubernetes Secrets by (namespace, name): the gateways' credentialNames (SDS).
    secrets: Mapping[tuple[str, str], Resource] = dataclasses.field(default_factory=dict)
    version: str = ""
    # Generated resources shared by every proxy that would get the same ones in this push
    # (generator.py keys each entry by everything it was built from); dropped with the push.
    memo: dict[object, object] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    # Pieces kept across pushes (None: every push builds everything).
    cache: PieceCache | None = dataclasses.field(default=None, compare=False, repr=False)
    # Which config this is: pushes with equal ids differ in their index alone (a registry
    # moved, Istio config did not), which lets generators look at the changed hosts only.
    # None: unknown, every push may differ in config.
    config_id: int | None = dataclasses.field(default=None, compare=False)

    @property
    def services(self) -> Mapping[str, Service]:
        return self.index.services

    def resolve(self, host: str, namespace: str) -> str:
        return hostname.resolve_short_name(host, namespace, self.mesh.domain_suffix)

    def virtual_services_for(self, gateway: str) -> list[BoundVirtualService]:
        """VirtualServices bound to a gateway (`<ns>/<name>`) or to the mesh's sidecars."""
        return self._by_gateway.get(gateway, [])

    @functools.cached_property
    def _by_gateway(self) -> dict[str, list[BoundVirtualService]]:
        by_gateway: dict[str, list[BoundVirtualService]] = {}
        for vs in self.virtual_services:
            for gateway in vs.gateways:
                by_gateway.setdefault(gateway, []).append(vs)
        return by_gateway

    def virtual_service_for(
        self, host: str, gateway: str = MESH_GATEWAY
    ) -> BoundVirtualService | None:
        """The first VirtualService (oldest) bound to `gateway` whose hosts match `host`."""
        exact, wildcards = self._by_host(gateway)
        candidates = list(exact.get(host, ()))
        candidates += [
            (i, vs)
            for i, vs, patterns in wildcards
            if any(hostname.matches(p, host) for p in patterns)
        ]
        return min(candidates, key=lambda c: c[0])[1] if candidates else None

    @functools.cached_property
    def _host_indexes(self) -> dict[str, _HostIndex]:
        return {}

    def _by_host(self, gateway: str) -> _HostIndex:
        """VirtualServices of a gateway by exact host, and those with wildcard hosts."""
        found = self._host_indexes.get(gateway)
        if found is not None:
            return found
        exact: dict[str, list[tuple[int, BoundVirtualService]]] = {}
        wildcards: list[tuple[int, BoundVirtualService, tuple[str, ...]]] = []
        for position, vs in enumerate(self.virtual_services_for(gateway)):
            patterns = tuple(h for h in vs.hosts if h.startswith("*"))
            if patterns:
                wildcards.append((position, vs, patterns))
            for host in vs.hosts:
                if not host.startswith("*"):
                    exact.setdefault(host, []).append((position, vs))
        self._host_indexes[gateway] = (exact, wildcards)
        return exact, wildcards

    def destination_rule(self, host: str) -> Resource | None:
        rule = self.destination_rules.get(host)
        if rule is not None:
            return rule
        # A wildcard rule (`*.example.com`) covers hosts it matches; most specific first.
        for pattern in self._wildcard_rules:
            if hostname.matches(pattern, host):
                return self.destination_rules[pattern]
        return None

    @functools.cached_property
    def _wildcard_rules(self) -> list[str]:
        return hostname.sorted_hosts(h for h in self.destination_rules if "*" in h)

    @functools.cached_property
    def uses_source_labels(self) -> bool:
        """Whether any mesh route depends on the calling workload's labels."""
        return any(vs.uses_source_labels for vs in self.virtual_services)

    def gateways_for(self, labels: Mapping[str, str]) -> list[Resource]:
        return [g for g in self.gateways if labels_match(dict(g.spec.selector), labels)]

    def sidecar_for(self, namespace: str, labels: Mapping[str, str]) -> Resource | None:
        """The Sidecar scoping a workload: one selecting it, else its namespace's default."""
        in_namespace = [s for s in self.sidecars if s.metadata.namespace == namespace]
        for sidecar in in_namespace:
            selector = sidecar.spec.workload_selector
            if selector.labels and labels_match(dict(selector.labels), labels):
                return sidecar
        return next((s for s in in_namespace if not s.spec.workload_selector.labels), None)


def build_push_context(
    configs: Mapping[str, Sequence[Resource]],
    index: ServiceIndex,
    mesh: MeshOptions | None = None,
    version: str = "",
    cache: PieceCache | None = None,
    config_id: int | None = None,
    jwks: Mapping[str, str] | None = None,
) -> PushContext:
    """`configs` maps a kind name (`VirtualService`, ...) to every resource of that kind;
    `index` is the registries' view (ServiceEntries are the ServiceEntry registry's)."""
    mesh = mesh or MeshOptions()

    def of(kind: str) -> list[Resource]:
        return sorted(configs.get(kind, ()), key=_order)

    return PushContext(
        mesh=mesh,
        index=index,
        virtual_services=tuple(_bind(vs, mesh) for vs in of("VirtualService")),
        destination_rules=_by_host(of("DestinationRule"), mesh),
        gateways=tuple(of("Gateway")),
        sidecars=tuple(of("Sidecar")),
        peer_authentications=tuple(of("PeerAuthentication")),
        authorization_policies=tuple(of("AuthorizationPolicy")),
        request_authentications=tuple(of("RequestAuthentication")),
        jwks=dict(jwks or {}),
        quota_specs=tuple(of("QuotaSpec")),
        quota_spec_bindings=tuple(of("QuotaSpecBinding")),
        secrets={(s.metadata.namespace, s.metadata.name): s for s in configs.get("Secret", ())},
        version=version,
        cache=cache,
        config_id=config_id,
    )


def _bind(vs: Resource, mesh: MeshOptions) -> BoundVirtualService:
    namespace = vs.metadata.namespace
    gateways = [
        g if g == MESH_GATEWAY or "/" in g else f"{namespace}/{g}" for g in vs.spec.gateways
    ]
    return BoundVirtualService(
        resource=vs,
        hosts=tuple(
            hostname.resolve_short_name(h, namespace, mesh.domain_suffix) for h in vs.spec.hosts
        ),
        gateways=frozenset(gateways or [MESH_GATEWAY]),
    )


def _by_host(rules: Iterable[Resource], mesh: MeshOptions) -> dict[str, Resource]:
    by_host: dict[str, Resource] = {}
    for rule in rules:
        host = hostname.resolve_short_name(
            rule.spec.host, rule.metadata.namespace, mesh.domain_suffix
        )
        by_host.setdefault(host, rule)  # the oldest rule for a host wins, as in Istio
    return by_host


def _order(resource: Resource) -> tuple[str, str, str]:
    m = resource.metadata
    return (m.creation_timestamp or "", m.namespace, m.name)
