"""The pod in Consul: registered with the Consul agent, kept passing, removed when it stops.

Where the mesh's services live in Consul, a workload registers itself with its Consul agent
(`PUT /v1/agent/service/register`) as registrator did for Istio's Consul samples: service
name from the `app` label, the pod's address and app port, its labels as `key|value` tags
(Istio's Consul adapter reads only that form), the port's protocol as `ServiceMeta`
`protocol`. A TTL check starts critical, so Pilot sends no traffic before the agent has
reported the pod alive; the agent then passes the check while it runs, and a pod that dies
stops being passed and leaves traffic within the TTL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import aiohttp
import consul
import consul.aio

from pkg.aio.backoff import Backoff
from proxy.agent.options import AgentOptions

log = logging.getLogger("pilot-agent.consul")

TLS_MODE_LABEL = "security.istio.io/tlsMode"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConsulRegistration:
    url: str  # the Consul agent, http://host:port
    service: str
    service_id: str
    address: str
    port: int
    protocol: str
    tags: tuple[str, ...]
    ttl: float = 10.0  # seconds a pass lasts; passed every ttl/3
    min_backoff: float = 0.2
    max_backoff: float = 5.0
    deregister_timeout: float = 5.0

    @classmethod
    def for_agent(cls, options: AgentOptions, url: str) -> ConsulRegistration:
        name, port = _app_port(options)
        labels = {**options.labels, TLS_MODE_LABEL: "istio" if options.sds_socket else "disabled"}
        return cls(
            url=url,
            service=options.labels.get("app") or options.pod,
            service_id=options.pod,
            address=options.ip,
            port=port,
            protocol=name.split("-", 1)[0] if name else "tcp",
            tags=tuple(f"{k}|{v}" for k, v in sorted(labels.items())),
        )

    @property
    def check_id(self) -> str:
        return f"service:{self.service_id}"


class ConsulRegistrar:
    def __init__(self, *, options: ConsulRegistration) -> None:
        self._options = options
        self._maybe_registered = False

    async def register(self) -> None:
        """Registers (retrying while Consul is unreachable), then passes the check forever."""
        o = self._options
        host, port = _host_port(o.url)
        agent = consul.aio.Consul(host=host, port=port)
        backoff = Backoff(o.min_backoff, o.max_backoff)
        try:
            while True:
                try:
                    self._maybe_registered = True
                    await agent.agent.service.register(
                        o.service, service_id=o.service_id, address=o.address, port=o.port,
                        tags=list(o.tags), meta={"protocol": o.protocol},
                        check=consul.Check.ttl(f"{o.ttl:g}s"),
                    )  # fmt: skip
                    log.info("registered %s in consul as service %s", o.service_id, o.service)
                    backoff.reset()
                    while True:
                        await agent.agent.check.ttl_pass(o.check_id, notes="pilot-agent: ready")
                        await asyncio.sleep(o.ttl / 3)
                except (consul.ConsulException, aiohttp.ClientError, TimeoutError) as error:
                    delay = backoff.next_delay()
                    log.warning("consul registration: %s; retrying in %.3gs", error, delay)
                    await asyncio.sleep(delay)
        finally:
            await agent.close()

    async def deregister(self) -> None:
        if not self._maybe_registered:
            return
        o = self._options
        host, port = _host_port(o.url)
        agent = consul.aio.Consul(host=host, port=port)
        try:
            async with asyncio.timeout(o.deregister_timeout):
                await agent.agent.service.deregister(o.service_id)
            log.info("deregistered %s from consul", o.service_id)
            self._maybe_registered = False
        except (consul.ConsulException, aiohttp.ClientError, TimeoutError) as error:
            log.error("could not deregister %s from consul: %s", o.service_id, error)
        finally:
            await agent.close()


def _app_port(options: AgentOptions) -> tuple[str, int]:
    """The app's first named port (`http=9080`); a service without one is refused early."""
    if not options.ports:
        raise ValueError("--registry Consul needs the app's port (--ports http=9080)")
    name = next(iter(options.ports))
    return name, options.ports[name]


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return (host, int(port)) if host else (rest, 8500)
