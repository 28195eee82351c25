"""One pod's agent: bootstrap, status server, Envoy and registration, owned by one TaskGroup.

Start order: the bootstrap is written, the status server listens (so probes get a reason, not
a refused connection), Envoy starts, and the WorkloadEntry is created. Stop order is the
reverse of what traffic needs: leave the mesh first (readiness 503, WorkloadEntry deleted, so
Pilot stops sending traffic here), then drain and stop Envoy, then close the status server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from proxy.agent import bootstrap
from proxy.agent.admin import AdminClient
from proxy.agent.consul_registration import ConsulRegistrar, ConsulRegistration
from proxy.agent.eureka_registration import EurekaRegistrar, EurekaRegistration
from proxy.agent.options import AgentOptions
from proxy.agent.readiness import ReadinessOptions
from proxy.agent.registration import Registrar, RegistrationOptions
from proxy.agent.stats import StatsOptions, app_url_from
from proxy.agent.status import StatusOptions, StatusServer
from proxy.agent.supervisor import EnvoyOptions, EnvoySupervisor
from proxy.dns.nds import NdsClient, NdsOptions
from proxy.dns.server import DnsOptions, LocalDnsServer, parse_resolv_conf

RESOLV_CONF = pathlib.Path("/etc/resolv.conf")  # the pod's, under `ip netns exec`

log = logging.getLogger("pilot-agent")


class PodRegistrar(Protocol):
    async def register(self) -> object:
        """Makes the pod known (retrying); may then keep it known until cancelled."""
        ...

    async def deregister(self) -> None: ...


def registrar_for(options: AgentOptions) -> PodRegistrar:
    match options.registry:
        case "Consul":
            url = options.registry_url
            return ConsulRegistrar(options=ConsulRegistration.for_agent(options, url))
        case "Eureka":
            url = options.registry_url
            return EurekaRegistrar(options=EurekaRegistration.for_agent(options, url))
        case _:
            return Registrar(options=RegistrationOptions.for_agent(options))


class Agent:
    def __init__(
        self,
        *,
        options: AgentOptions,
        environ: Mapping[str, str] | None = None,
        resolv_conf: pathlib.Path = RESOLV_CONF,
    ) -> None:
        self._options = options
        self._environ = dict(os.environ if environ is None else environ)
        self._resolv_conf = resolv_conf
        self.dns: LocalDnsServer | None = None
        self.nds: NdsClient | None = None
        self.envoy = EnvoySupervisor(options=EnvoyOptions.for_agent(options))
        self.registrar = registrar_for(options) if options.register else None

    async def run(self, stop: asyncio.Event) -> None:
        """Runs until `stop` is set, then shuts down in order; raises if a part fails."""
        options = self._options
        bootstrap.write_bootstrap(options, self._environ)
        log.info("wrote %s for node %s", options.bootstrap_path, bootstrap.node_id(options))
        async with AdminClient(options.admin_url) as admin:
            status = StatusServer(
                options=StatusOptions(
                    ip=options.ip,
                    port=options.status_port,
                    readiness=ReadinessOptions(
                        proxy_type=options.proxy_type,
                        ip=options.ip,
                        interception_mode=options.interception_mode,
                    ),
                    stats=StatsOptions(
                        envoy_url=f"http://{options.ip}:{options.envoy_prometheus_port}/stats/prometheus",
                        app_url=app_url_from(self._environ, options.ip),
                    ),
                ),
                admin=admin,
            )
            await status.start()
            log.info("status server on %s:%d", options.ip, status.port)
            try:
                async with self._dns_proxy(), asyncio.TaskGroup() as tasks:
                    names = None
                    if self.nds is not None:
                        names = tasks.create_task(self.nds.run(), name="nds")
                    tasks.create_task(self.envoy.run(), name="envoy")
                    registering = None
                    if self.registrar is not None:
                        registering = tasks.create_task(self.registrar.register(), name="register")
                    await stop.wait()
                    log.info("stopping: leaving the mesh, then draining envoy")
                    status.mark_shutting_down()
                    if registering is not None:
                        registering.cancel()  # still retrying, or done: either way over
                        await asyncio.wait({registering})
                    await self._leave_mesh()
                    await self.envoy.stop()
                    if names is not None:
                        names.cancel()  # runs until cancelled
            finally:
                # Also when a part failed or a second signal cut the drain short.
                status.mark_shutting_down()
                await self._leave_mesh()
                await status.stop()
        log.info("stopped")

    @contextlib.asynccontextmanager
    async def _dns_proxy(self) -> AsyncIterator[None]:
        """With DNS capture: the DNS proxy listening, and its NDS client made (started by
        run's TaskGroup); closed on the way out. Without: nothing."""
        options = self._options
        if not options.dns_capture:
            yield
            return
        try:
            upstreams, search = parse_resolv_conf(self._resolv_conf.read_text())
        except OSError as error:
            log.warning(
                "DNS proxy: %s unreadable (%s): no upstream resolver", self._resolv_conf, error
            )
            upstreams, search = (), ()
        self.dns = LocalDnsServer(
            options=DnsOptions(
                namespace=options.namespace,
                domain=options.dns_domain,
                upstreams=upstreams,
                search=search,
            )
        )
        node = base_pb2.Node(
            id=bootstrap.node_id(options), cluster=bootstrap.service_cluster(options)
        )
        json_format.ParseDict(bootstrap.node_metadata(options, self._environ), node.metadata)
        target = f"unix:{options.agent_xds_socket}"
        self.nds = NdsClient(
            options=NdsOptions(target=target, node=node), apply=self.dns.update_table
        )
        try:
            await self.dns.start()
        except OSError as error:
            host, port = self.dns.address
            raise RuntimeError(
                f"DNS capture is on (ISTIO_META_DNS_CAPTURE) but the DNS proxy cannot listen on "
                f"{host}:{port}: {error}"
            ) from None
        try:
            yield
        finally:
            await self.dns.stop()

    async def _leave_mesh(self) -> None:
        if self.registrar is not None:
            await self.registrar.deregister()  # does nothing once done
