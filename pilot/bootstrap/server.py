"""pilot-discovery: the config store watched, the service model built, Envoy config served.

One `DiscoveryServer` owns every long-lived task of the process in one TaskGroup: the
informer that mirrors the config store, the xDS push loop, the gRPC server (ADS, 15010)
and the HTTP server (readiness and debug, 15014). Config changes mark the PushContext
stale and queue a debounced push; the next generation rebuilds it once and every proxy
of that push reads the same immutable snapshot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any

import grpc
from aiohttp import web

from pilot.bootstrap.servingcert import SecureXdsOptions, ServingCertificate, authorize
from pilot.model.push_context import MeshOptions, PushContext, build_push_context
from pilot.networking import generator
from pilot.webhooks.server import WebhookOptions, WebhookServer
from pilot.xds.debug import debug_routes
from pilot.xds.proxy import Proxy
from pilot.xds.server import XdsServer
from pkg.config.kinds import PILOT
from pkg.kube.client import ConfigClient
from pkg.kube.informer import Informer
from pkg.version import buildinfo

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
    mesh: MeshOptions = dataclasses.field(default_factory=MeshOptions)
    secure: SecureXdsOptions | None = None  # the mutual-TLS xDS port (15012), if any
    webhooks: WebhookOptions | None = None  # the admission webhooks over TLS (15017), if any
    # A cluster's API server as the config store: the service account's token and CA.
    config_store_token: str | None = None
    config_store_ca: str | None = None  # a CA bundle file


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
        self._informer = Informer(self._client, PILOT, on_change=self._config_changed)
        self.xds = XdsServer(
            self._generate,
            debounce_after=options.debounce_after,
            debounce_max=options.debounce_max,
            authorize=authorize(options.mesh.trust_domain),
        )
        self.serving_cert = ServingCertificate(options.secure) if options.secure else None
        self.secure_address = options.secure.address if options.secure else ""
        self.webhooks = (
            WebhookServer(options.webhooks, store=self._client) if options.webhooks else None
        )
        self._push: PushContext | None = None
        self._push_version = 0
        self._stale = True
        self.ready = asyncio.Event()
        self.grpc_address = options.grpc_address  # the bound addresses, once serving
        self.http_address = options.http_address

    async def run(self) -> None:
        """Serve until cancelled; `ready` is set once config is synced and ports are open."""
        grpc_server = grpc.aio.server()
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
                tasks.create_task(self.xds.run(), name="xds-push")
                if self.serving_cert is not None:
                    await self.serving_cert.obtain()
                    port = grpc_server.add_secure_port(
                        self.options.secure.address, self.serving_cert.credentials()
                    )
                    self.secure_address = f"{_split(self.options.secure.address)[0]}:{port}"
                    tasks.create_task(self.serving_cert.run(), name="serving-cert")
                if self.webhooks is not None:
                    tasks.create_task(self.webhooks.run(), name="webhooks")
                    await self.webhooks.ready.wait()
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

    async def _config_changed(self) -> None:
        self._stale = True
        await self.xds.push("config")

    def push_context(self) -> PushContext:
        if self._stale or self._push is None:
            started = time.perf_counter()
            snapshot = self._informer.snapshot()
            self._push_version += 1
            self._stale = False
            self._push = build_push_context(
                {schema.kind: resources for schema, resources in snapshot.items()},
                self.options.mesh,
                version=str(self._push_version),
            )
            log.debug(
                "push context %s built in %.1f ms",
                self._push_version,
                (time.perf_counter() - started) * 1e3,
            )
        return self._push

    def _generate(self, proxy: Proxy, type_url: str, names: Sequence[str]) -> list[Any]:
        return generator.generate(proxy, type_url, names, self.push_context())

    def _http_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ready", self._handle_ready)
        app.router.add_get("/version", self._handle_version)
        app.router.add_get("/debug/registryz", self._handle_registryz)
        app.router.add_get("/debug/endpointz", self._handle_endpointz)
        app.router.add_get("/debug/configz", self._handle_configz)
        app.add_routes(debug_routes(self.xds))
        return app

    async def _handle_ready(self, _: web.Request) -> web.Response:
        if self.ready.is_set():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="config not synced\n")

    async def _handle_version(self, _: web.Request) -> web.Response:
        # istiod's /version: its BuildInfo, which `istioctl version` shows as the control plane's.
        return web.json_response(buildinfo.get().to_json())

    async def _handle_registryz(self, _: web.Request) -> web.Response:
        services = [
            {
                "hostname": s.hostname,
                "namespace": s.namespace,
                "address": s.address,
                "resolution": s.resolution.value,
                "meshExternal": s.mesh_external,
                "ports": [
                    {"name": p.name, "port": p.number, "protocol": p.protocol.value}
                    for p in s.ports
                ],
            }
            for s in self.push_context().services.values()
        ]
        return web.json_response(services)

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
                for resources in self._informer.snapshot().values()
                for resource in resources
            ]
        )


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)
