"""pilot-discovery: the config store watched, the service model built, Envoy config served.

One `DiscoveryServer` owns every long-lived task of the process in one TaskGroup: the
informer that mirrors the config store, the service registries (`--registries`, merged by
the aggregate), the xDS push loop, the gRPC server (ADS, 15010) and the HTTP server
(readiness and debug, 15014).

What a change costs depends on what changed. Istio config (VirtualService, DestinationRule,
...) marks the config side of the PushContext stale and queues a full push. ServiceEntries
and WorkloadEntries go to the ServiceEntry registry, whose events say which hostnames
changed: a changed service is a full push; instances alone are an endpoint push to the
proxies subscribed to that service's clusters (and a full push to the workloads at the
addresses that moved, whose inbound config changed). The next generation rebuilds the
PushContext once, re-reading only the hostnames that changed, and every proxy of that push
reads the same immutable snapshot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from collections.abc import Collection, Iterable

from aiohttp import web

from pilot.bootstrap import meshconfig, registries
from pilot.bootstrap.jwks import JwksResolver
from pilot.bootstrap.monitoring import register_push_context_metrics
from pilot.bootstrap.registries import PlatformOptions
from pilot.bootstrap.rootcert import RootCertOptions, RootCertPublisher
from pilot.bootstrap.servingcert import SecureXdsOptions, ServingCertificate, authorize
from pilot.model.discovery import RegistryEvent, ReportsStatus, ServiceEvent
from pilot.model.index import ServiceIndex
from pilot.model.push_context import MeshOptions, PushContext, build_push_context
from pilot.networking import credentials, generator, jwt, names
from pilot.networking.cache import GenerationCache
from pilot.registry.provider import Provider
from pilot.webhooks.server import WebhookOptions, WebhookServer
from pilot.xds.debug import debug_routes
from pilot.xds.proxy import Proxy
from pilot.xds.server import XdsServer
from pkg.aio.idle_gc import IdleCollector
from pkg.config.kinds import KUBERNETES, PILOT, KindSchema
from pkg.config.mesh import MeshConfigError
from pkg.config.resource import Resource
from pkg.grpcserver.server import STREAMS, new_server
from pkg.kube.client import ConfigClient
from pkg.kube.informer import Informer
from pkg.monitoring import CONTENT_TYPE, render
from pkg.version import buildinfo
from pkg.xds.resources import Resources

log = logging.getLogger("pilot.discovery")


@dataclasses.dataclass(frozen=True)
class DiscoveryOptions:
    config_store: str = "http://127.0.0.1:8001"
    grpc_address: str = "127.0.0.1:15010"
    http_address: str = "127.0.0.1:15014"
    # PILOT_DEBOUNCE_AFTER / _MAX. Istio waits 100 ms of quiet and at most 10 s, sized for
    # clusters where a push costs seconds. Here a push to every Bookinfo proxy takes about
    # 12 ms to generate and istioctl writes a file's documents about 10 ms apart, so 20 ms
    # of quiet mostly folds one apply into one push (an extra push costs little and sends
    # only what changed) and keeps convergence well under Istio's 100 ms quiet period
    # alone (tools/bench/convergence.py).
    debounce_after: float = 0.02
    debounce_max: float = 1.0
    # The mesh config of --mesh-config (the fallback), overridden by the ConfigMap `istio`
    # (key `mesh`) in this namespace of the config store, watched (meshconfig.py).
    mesh: MeshOptions = dataclasses.field(default_factory=MeshOptions)
    mesh_configmap_namespace: str = meshconfig.NAMESPACE
    secure: SecureXdsOptions | None = None  # the mutual-TLS xDS port (15012), if any
    registries: tuple[Provider, ...] = registries.DEFAULT  # consulted in this order
    platforms: PlatformOptions = dataclasses.field(default_factory=PlatformOptions)
    webhooks: WebhookOptions | None = None  # the admission webhooks over TLS (15017), if any
    # A cluster's API server as the config store: the service account's token and CA.
    config_store_token: str | None = None
    config_store_ca: str | None = None  # a CA bundle file
    # istio-ca-root-cert in every namespace (the config store is a cluster's API server).
    root_cert: RootCertOptions | None = None
    # RequestAuthentication jwksUris: Pilot fetches them (Istio's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL
    # is 20 min); a fetch that takes longer than the timeout fails.
    jwks_timeout: float = 5.0
    jwks_refresh: float = 1200.0


# The kinds the ServiceEntry registry reads; the rest is Istio config for the PushContext.
REGISTRY_KINDS = frozenset({"ServiceEntry", "WorkloadEntry"})
# Kubernetes Secrets: the gateways' credentialNames, which Pilot serves them over SDS.
SECRET = KUBERNETES.by_name("secret")
# ConfigMaps: the mesh config (istio-system/istio), watched as istiod watches it.
CONFIGMAP = KUBERNETES.by_name("configmap")
_GATEWAY = PILOT.by_name("gateway")

# What a change of each kind can change in a proxy's config: the xDS types it regenerates
# (None: all) and whether only gateways are concerned. Kinds not listed push everything.
_CDS, _EDS, _LDS, _RDS = generator.CLUSTER, generator.ENDPOINT, generator.LISTENER, generator.ROUTE
_SDS = generator.SECRET
KIND_EFFECTS: dict[str, tuple[frozenset[str] | None, bool]] = {
    # HTTP routes (RDS), and tcp/tls routes: captured sidecars' and gateways' listeners.
    "VirtualService": (frozenset({_RDS, _LDS}), False),
    # Policies, subsets and theirs; and RDS: a consistent hash is the routes' hash_policy.
    "DestinationRule": (frozenset({_CDS, _EDS, _RDS}), False),
    "Gateway": (frozenset({_LDS, _RDS, _SDS}), True),  # SDS: the credentials it names
    "AuthorizationPolicy": (frozenset({_LDS}), False),  # the RBAC filters
    "RequestAuthentication": (frozenset({_LDS}), False),  # the jwt_authn filters
    "Sidecar": (None, False),  # what a proxy sees
    "PeerAuthentication": (None, False),  # listeners, and EDS's mTLS marks
    # A gateway's certificates, and its listeners (a server waits for its Secret to exist).
    "Secret": (frozenset({_LDS, _SDS}), True),
}


class DiscoveryServer:
    def __init__(self, options: DiscoveryOptions) -> None:
        self.options = options
        self._client = ConfigClient(
            options.config_store,
            token=options.config_store_token,
            ssl_context=ssl.create_default_context(cafile=options.config_store_ca)
            if options.config_store_ca
            else None,
        )
        self._informer = Informer(
            self._client, (*PILOT, SECRET, CONFIGMAP), on_events=self._config_changed
        )
        self.mesh = options.mesh  # the mesh config in use: the ConfigMap's, else the file's
        self._registries = registries.build(options.registries, options.platforms)
        self.registry = self._registries.aggregate
        self.registry.append_service_handler(self._service_changed)
        self.idle_gc = IdleCollector()
        self.xds = XdsServer(
            self._generate,
            on_activity=self.idle_gc.busy,
            debounce_after=options.debounce_after,
            debounce_max=options.debounce_max,
            authorize=authorize(options.mesh.trust_domain),
        )
        register_push_context_metrics(self.xds.metrics.registry, lambda: self._push)
        self.serving_cert = ServingCertificate(options.secure) if options.secure else None
        self.secure_address = options.secure.address if options.secure else ""
        self.webhooks = (
            WebhookServer(options.webhooks, store=self._client) if options.webhooks else None
        )
        self.root_cert = (
            RootCertPublisher(self._client, options.root_cert) if options.root_cert else None
        )
        self.jwks = JwksResolver(
            self._jwks_changed, timeout=options.jwks_timeout, refresh=options.jwks_refresh
        )
        self._push: PushContext | None = None
        self._push_version = 0
        self._stale = True  # the config side of the PushContext
        self._index = ServiceIndex.empty()
        self.generation_cache = GenerationCache()
        self._stale_hosts: set[str] | None = None  # hostnames to re-read; None: all
        self.ready = asyncio.Event()
        self.grpc_address = options.grpc_address  # the bound addresses, once serving
        self.http_address = options.http_address

    async def run(self) -> None:
        """Serve until cancelled; `ready` is set once config is synced and ports are open."""
        grpc_server = new_server(STREAMS)
        self.xds.add_to(grpc_server)
        grpc_host, _ = _split(self.options.grpc_address)
        self.grpc_address = (
            f"{grpc_host}:{grpc_server.add_insecure_port(self.options.grpc_address)}"
        )
        runner = web.AppRunner(self._http_app(), access_log=None)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._informer.run(), name="config-informer")
                await self._informer.synced.wait()
                log.info("config synced from %s", self.options.config_store)
                self._read_mesh_config()
                self._feed_service_entries(self._informer.snapshot())
                await self.jwks.want(self._jwks_uris())
                tasks.create_task(self.jwks.run(), name="jwks-refresh")
                registries_started = asyncio.Event()
                tasks.create_task(
                    self.registry.run(started=registries_started), name="service-registries"
                )
                await registries_started.wait()
                tasks.create_task(self.xds.run(), name="xds-push")
                tasks.create_task(self.idle_gc.run(), name="idle-gc")
                if self.serving_cert is not None:
                    assert self.options.secure is not None  # the cert is made for it alone
                    await self.serving_cert.obtain()
                    port = grpc_server.add_secure_port(
                        self.options.secure.address, self.serving_cert.credentials()
                    )
                    self.secure_address = f"{_split(self.options.secure.address)[0]}:{port}"
                    tasks.create_task(self.serving_cert.run(), name="serving-cert")
                if self.webhooks is not None:
                    tasks.create_task(self.webhooks.run(), name="webhooks")
                    await self.webhooks.ready.wait()
                if self.root_cert is not None:
                    tasks.create_task(self.root_cert.run(), name="root-cert-publisher")
                await grpc_server.start()
                host, port = _split(self.options.http_address)
                await runner.setup()
                await web.TCPSite(runner, host, port).start()
                self.http_address = "{}:{}".format(*runner.addresses[0][:2])
                self.ready.set()
                log.info(
                    "pilot-discovery ready: xDS on %s%s, HTTP on %s",
                    self.grpc_address,
                    f" and {self.secure_address} (mutual TLS)" if self.serving_cert else "",
                    self.http_address,
                )
        finally:
            await self.xds.stop(1.0)
            await grpc_server.stop(1.0)
            await runner.cleanup()
            await self._client.close()

    async def _config_changed(
        self, schema: KindSchema, changes: list[tuple[str, Resource]]
    ) -> None:
        """The store changed some resources of one kind: feed a registry, or push config."""
        kind = schema.kind
        if kind == "ConfigMap":
            namespace = self.options.mesh_configmap_namespace
            ours = any(meshconfig.is_mesh_configmap(r, namespace) for _, r in changes)
            if ours and self._read_mesh_config():
                self._stale = True  # every proxy's config may read the mesh config
                await self.xds.push("mesh config: ConfigMap istio changed")
            return
        if kind in REGISTRY_KINDS:
            registry = self._registries.service_entries
            if registry is not None:
                # Its events (handled by _service_changed) say what to push.
                for event, resource in changes:
                    registry.apply(kind, resource, deleted=event == "DELETED")
            return
        if kind == "Secret" and not self._gateways_use(r for _, r in changes):
            return  # a service account token, a CA's keys...: nothing a gateway serves
        if kind == "RequestAuthentication":
            # The first push with a new jwksUri carries its keys (or, failing, no trust).
            await self.jwks.want(self._jwks_uris())
        self._stale = True
        types, routers_only = KIND_EFFECTS.get(kind, (None, False))
        which = ", ".join(sorted({f"{r.metadata.namespace}/{r.metadata.name}" for _, r in changes}))
        await self.xds.push(
            f"config: {kind} {which}",
            affects=(lambda proxy: proxy.type == "router") if routers_only else None,
            types=types,
        )

    def _read_mesh_config(self) -> bool:
        """Take the mesh ConfigMap's config (the file's when there is none); whether the mesh
        config in use changed. An invalid one is logged and changes nothing."""
        namespace = self.options.mesh_configmap_namespace
        found = self._informer.get(CONFIGMAP, meshconfig.CONFIGMAP, namespace)
        try:
            mesh = (
                meshconfig.from_configmap(found, self.options.mesh)
                if found is not None
                else self.options.mesh
            )
        except MeshConfigError as error:
            log.error("mesh config not applied, keeping the one in use: %s", error)
            return False
        changed = mesh != self.mesh or mesh.mesh_config != self.mesh.mesh_config
        if changed:
            log.info(
                "mesh config from %s",
                f"ConfigMap {namespace}/{meshconfig.CONFIGMAP}" if found else "the file",
            )
        self.mesh = mesh
        return changed

    def _gateways_use(self, secrets: Iterable[Resource]) -> bool:
        """Whether a Gateway names one of `secrets` (or its `-cacert`) as its credential."""
        names = {(s.metadata.namespace, s.metadata.name) for s in secrets}
        wanted = {n.removesuffix(credentials.CA_SUFFIX) for _, n in names}
        for gateway in self._informer.list(_GATEWAY):
            for server in gateway.spec.servers:
                if server.HasField("tls") and server.tls.credential_name in wanted:
                    return True
        return False

    def _jwks_uris(self) -> set[str]:
        snapshot = self._informer.snapshot()
        return jwt.jwks_uris(
            [r for s, items in snapshot.items() if s.kind == "RequestAuthentication" for r in items]
        )

    async def _jwks_changed(self, uris: list[str]) -> None:
        self._stale = True
        await self.xds.push(f"jwks: keys of {', '.join(uris)}", types=frozenset({_LDS}))

    def _feed_service_entries(self, snapshot: dict[KindSchema, list[Resource]]) -> None:
        registry = self._registries.service_entries
        if registry is None:
            return
        by_kind = {schema.kind: items for schema, items in snapshot.items()}
        registry.sync(by_kind.get("ServiceEntry", ()), by_kind.get("WorkloadEntry", ()))

    async def _service_changed(self, event: RegistryEvent) -> None:
        """A registry's view of a hostname changed: push what that changes, no more."""
        if isinstance(event, ServiceEvent):
            hostname = event.service.hostname
            self._mark_stale(hostname)
            await self.xds.push(f"service {event.event.value} {hostname}")
            return
        hostname = event.hostname
        before = self._index
        service = self.registry.get_service(hostname)
        self._mark_stale(hostname)
        if service is None:
            return
        old = [e for p in service.ports for e in before.endpoints_of(hostname, p.number)]
        new = [e for p in service.ports for e in self.registry.instances(hostname, p.number)]
        if {e.service_account for e in old} != {e.service_account for e in new}:
            # Clients check a server's identity against its service accounts (CDS).
            await self.xds.push(f"service accounts of {hostname}")
            return
        push = self.push_context()
        await self.xds.push(
            f"endpoints of {hostname}",
            full=False,
            endpoints=names.outbound_clusters_of(service, push),
        )
        moved = {e.address for e in old} ^ {e.address for e in new}
        if moved:
            # Workloads that started or stopped serving it: their inbound config changed.
            await self.xds.push(
                f"instances of {hostname} at {', '.join(sorted(moved))}",
                affects=lambda proxy: proxy.ip in moved,
            )

    def _mark_stale(self, hostname: str) -> None:
        if self._stale_hosts is not None:
            self._stale_hosts.add(hostname)

    def push_context(self) -> PushContext:
        if self._stale or self._push is None or self._stale_hosts is None or self._stale_hosts:
            started = time.perf_counter()
            self._index = self._index.refresh(self.registry, self._stale_hosts)
            self._stale_hosts = set()
            self._push_version += 1
            self.generation_cache.next_push()
            if self._stale or self._push is None:
                snapshot = self._informer.snapshot()
                self._push = build_push_context(
                    {
                        s.kind: items
                        for s, items in snapshot.items()
                        if s.kind not in REGISTRY_KINDS and s is not CONFIGMAP
                    },
                    self._index,
                    self.mesh,
                    version=str(self._push_version),
                    cache=self.generation_cache,
                    config_id=self._push_version,
                    jwks=self.jwks.keys(),
                )
                self._stale = False
            else:
                # Only the registries moved: the config side is reused as it is.
                self._push = dataclasses.replace(
                    self._push, index=self._index, version=str(self._push_version), memo={}
                )
            log.debug(
                "push context %s built in %.1f ms",
                self._push_version,
                (time.perf_counter() - started) * 1e3,
            )
        return self._push

    def _generate(self, proxy: Proxy, type_url: str, names: Collection[str]) -> Resources:
        return generator.generate(proxy, type_url, names, self.push_context())

    def _http_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ready", self._handle_ready)
        app.router.add_get("/version", self._handle_version)
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/debug/registryz", self._handle_registryz)
        app.router.add_get("/debug/endpointz", self._handle_endpointz)
        app.router.add_get("/debug/configz", self._handle_configz)
        app.add_routes(debug_routes(self.xds))
        return app

    async def _handle_ready(self, _: web.Request) -> web.Response:
        if self.ready.is_set() and self.registry.has_synced():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="config or registries not synced\n")

    async def _handle_metrics(self, _: web.Request) -> web.Response:
        # istiod's monitoring endpoint (15014/metrics), in Istio's metric names.
        body = render(self.xds.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _handle_version(self, _: web.Request) -> web.Response:
        # istiod's /version: its BuildInfo, which `istioctl version` shows as the control plane's.
        return web.json_response(buildinfo.get().to_json())

    async def _handle_registryz(self, _: web.Request) -> web.Response:
        """Each registry with its state, and every service with the registry that owns it."""
        members = [
            {"provider": r.provider, "synced": r.has_synced(), **_status(r)}
            for r in self.registry.registries
        ]
        services = [
            {
                "hostname": s.hostname,
                "namespace": s.namespace,
                "address": s.address,
                "resolution": s.resolution.value,
                "meshExternal": s.mesh_external,
                "registry": self.registry_of(s.hostname),
                "ports": [
                    {"name": p.name, "port": p.number, "protocol": p.protocol.value}
                    for p in s.ports
                ],
            }
            for s in self.push_context().services.values()
        ]
        return web.json_response({"registries": members, "services": services})

    def registry_of(self, hostname: str) -> str:
        owner = self.registry.owner_of(hostname)
        return owner.provider if owner is not None else ""

    async def _handle_endpointz(self, _: web.Request) -> web.Response:
        endpoints = [
            {
                "service": host,
                "servicePort": port,
                "address": e.address,
                "port": e.port,
                "labels": dict(e.labels),
                "serviceAccount": e.service_account,
                "workload": e.workload_name,
            }
            for (host, port), eps in sorted(self.push_context().index.endpoints.items())
            for e in eps
        ]
        return web.json_response(endpoints)

    async def _handle_configz(self, _: web.Request) -> web.Response:
        return web.json_response(
            [
                resource.to_dict()
                for schema, resources in self._informer.snapshot().items()
                if schema not in (SECRET, CONFIGMAP)  # keys stay out of debug output
                for resource in resources
            ]
        )


def _status(registry: object) -> dict[str, object]:
    """What a registry that watches a platform says of it (state, last error, counts)."""
    if isinstance(registry, ReportsStatus):
        return dataclasses.asdict(registry.status())
    return {"state": "synced" if getattr(registry, "has_synced", bool)() else "syncing"}


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)
