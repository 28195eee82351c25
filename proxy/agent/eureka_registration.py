"""The pod in Eureka: registered as a Eureka client registers, renewed, cancelled on stop.

Where the mesh's services live in Eureka, a workload registers its instance
(`POST /apps/<APP>`) and renews its lease with heartbeats, re-registering when Eureka
answers a heartbeat with 404 (the lease was evicted, or Eureka restarted), as every
Eureka client does. The instance: app from the `app` label, hostName `<app>.<domain>` (the
host Pilot's Eureka registry serves it under), the pod's address and app port, its labels
as metadata and the port's protocol as `istio.protocol` (what Istio's Eureka adapter reads).
Eureka writes metadata keys as XML element names, so a label whose key is not one (any
`prefix/name` key, `security.istio.io/tlsMode` included) is left out: callers then reach
the app directly, as they did in Istio's Eureka days, not through its sidecar.
On stop the instance is marked DOWN first, so traffic leaves it, then cancelled.
py-eureka-client's own EurekaClient runs its heartbeat on a thread that cannot be stopped
cleanly, so this drives the client's documented functions from the agent's event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import urllib.error

from py_eureka_client import eureka_basic

from pkg.aio.backoff import Backoff
from proxy.agent.options import AgentOptions

log = logging.getLogger("pilot-agent.eureka")

DOMAIN = "eureka"  # hostNames are <app>.eureka
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EurekaRegistration:
    url: str  # the server's prefix, e.g. http://127.0.0.1:8761/eureka/
    app: str
    hostname: str
    ip: str
    port: int
    metadata: dict[str, str]
    renewal_interval: float = 5.0  # seconds between heartbeats
    lease_duration: int = 15  # seconds Eureka keeps the lease without one
    min_backoff: float = 0.2
    max_backoff: float = 5.0
    deregister_timeout: float = 5.0

    @classmethod
    def for_agent(cls, options: AgentOptions, url: str) -> EurekaRegistration:
        if not options.ports:
            raise ValueError("--registry Eureka needs the app's port (--ports http=9080)")
        name = next(iter(options.ports))
        app = options.labels.get("app") or options.pod
        labels = {k: v for k, v in options.labels.items() if _XML_NAME.fullmatch(k)}
        for key in sorted(set(options.labels) - set(labels)):
            log.warning("label %s is not an XML name: not sent to eureka as metadata", key)
        return cls(
            url=url,
            app=app.upper(),
            hostname=f"{app}.{DOMAIN}",
            ip=options.ip,
            port=options.ports[name],
            metadata={**labels, "istio.protocol": name.split("-", 1)[0]},
        )

    @property
    def instance_id(self) -> str:
        return f"{self.ip}:{self.app.lower()}:{self.port}"

    def instance(self, status: str) -> eureka_basic.Instance:
        return eureka_basic.Instance(
            instanceId=self.instance_id,
            app=self.app,
            hostName=self.hostname,
            ipAddr=self.ip,
            port=eureka_basic.PortWrapper(self.port, True),
            securePort=eureka_basic.PortWrapper(443, False),
            vipAddress=self.app.lower(),
            secureVipAddress=self.app.lower(),
            status=status,
            metadata=dict(self.metadata),
            leaseInfo=eureka_basic.LeaseInfo(
                renewalIntervalInSecs=int(self.renewal_interval),
                durationInSecs=self.lease_duration,
            ),
            lastDirtyTimestamp=int(time.time() * 1000),
            lastUpdatedTimestamp=int(time.time() * 1000),
        )


_ERRORS = (urllib.error.URLError, OSError, TimeoutError)


class EurekaRegistrar:
    def __init__(self, *, options: EurekaRegistration) -> None:
        self._options = options
        self._maybe_registered = False
        self._dirty = 0

    async def register(self) -> None:
        """Registers (retrying while Eureka is unreachable), then renews the lease forever."""
        o = self._options
        backoff = Backoff(o.min_backoff, o.max_backoff)
        registered = False
        while True:
            try:
                if not registered:
                    self._maybe_registered = True
                    instance = o.instance("UP")
                    self._dirty = instance.lastDirtyTimestamp
                    await eureka_basic.register(o.url, instance)
                    log.info("registered %s in eureka as %s", o.instance_id, o.hostname)
                    registered = True
                    backoff.reset()
                await asyncio.sleep(o.renewal_interval)
                await eureka_basic.send_heartbeat(o.url, o.app, o.instance_id, self._dirty)
            except urllib.error.HTTPError as error:
                if error.code == 404:  # evicted, or a restarted server: register again
                    log.info("eureka does not know %s (404): registering again", o.instance_id)
                    registered = False
                    continue
                await self._retry(backoff, error)
            except _ERRORS as error:
                await self._retry(backoff, error)

    async def deregister(self) -> None:
        if not self._maybe_registered:
            return
        o = self._options
        try:
            async with asyncio.timeout(o.deregister_timeout):
                await eureka_basic.status_update(o.url, o.app, o.instance_id, self._dirty, "DOWN")
                await eureka_basic.cancel(o.url, o.app, o.instance_id)
            log.info("cancelled %s in eureka", o.instance_id)
            self._maybe_registered = False
        except _ERRORS as error:
            log.error("could not cancel %s in eureka: %s", o.instance_id, error)

    @staticmethod
    async def _retry(backoff: Backoff, error: Exception) -> None:
        delay = backoff.next_delay()
        log.warning("eureka registration: %s; retrying in %.3gs", error, delay)
        await asyncio.sleep(delay)
