"""The pod's WorkloadEntry: created when the agent starts, deleted when it stops.

On one machine there is no Kubernetes to tell Pilot that a pod exists, so the workload
registers itself in the config store, as Istio's VM auto-registration does. The label
`security.istio.io/tlsMode` marks that a sidecar fronts the workload (Pilot sends mesh
traffic to the sidecar's inbound port): `istio` when the sidecar holds Istio certificates
and can take mutual TLS (Istio's own value), `disabled` when it cannot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from pkg.aio.backoff import Backoff
from pkg.config import loader
from pkg.config.resource import Resource
from pkg.kube import errors
from pkg.kube.client import ConfigClient
from proxy.agent.options import AgentOptions

log = logging.getLogger("pilot-agent.registration")

TLS_MODE_LABEL = "security.istio.io/tlsMode"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RegistrationOptions:
    store_url: str
    pod: str
    namespace: str
    ip: str
    labels: dict[str, str]
    service_account: str
    ports: dict[str, int]
    min_backoff: float = 0.2
    max_backoff: float = 5.0
    deregister_timeout: float = 5.0  # stop must not hang on a store that is down
    mtls: bool = False  # the sidecar holds Istio certificates (its agent has an SDS socket)

    @classmethod
    def for_agent(cls, options: AgentOptions) -> RegistrationOptions:
        return cls(
            store_url=options.config_store,
            pod=options.pod,
            namespace=options.namespace,
            ip=options.ip,
            labels=dict(options.labels),
            service_account=options.service_account,
            ports=dict(options.ports),
            mtls=options.sds_socket is not None,
        )


def workload_entry(options: RegistrationOptions) -> Resource:
    """The WorkloadEntry for this pod, validated as any user's resource is."""
    labels = {**options.labels, TLS_MODE_LABEL: "istio" if options.mtls else "disabled"}
    return loader.load_object(
        {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "WorkloadEntry",
            "metadata": {"name": options.pod, "namespace": options.namespace, "labels": labels},
            "spec": {
                "address": options.ip,
                "labels": labels,
                "serviceAccount": options.service_account,
                "ports": dict(options.ports),
            },
        },
        source="pilot-agent",
    )


class Registrar:
    """Keeps the pod's WorkloadEntry in the store for as long as the agent runs."""

    def __init__(self, *, options: RegistrationOptions) -> None:
        self._options = options
        self.entry = workload_entry(options)  # raises loader.LoadError at once if invalid
        self._maybe_registered = False

    async def register(self) -> Resource:
        """Creates the entry, replacing one left by an earlier run; retries while the store is
        unreachable or busy. Raises on a refusal that retrying cannot fix (e.g. Invalid)."""
        backoff = Backoff(self._options.min_backoff, self._options.max_backoff)
        async with ConfigClient(self._options.store_url) as client:
            while True:
                try:
                    self._maybe_registered = True
                    stored = await self._create_or_replace(client)
                except (errors.Unavailable, errors.Conflict, errors.NotFound) as error:
                    delay = backoff.next_delay()
                    log.warning("cannot register yet (%s); retrying in %.3gs", error, delay)
                    await asyncio.sleep(delay)
                    continue
                log.info(
                    "registered WorkloadEntry %s/%s (%s)",
                    self._options.namespace,
                    self._options.pod,
                    self._options.ip,
                )
                return stored

    async def _create_or_replace(self, client: ConfigClient) -> Resource:
        try:
            return await client.create(self.entry)
        except errors.AlreadyExists:
            pass
        # An entry of the same name: this pod's own, left by an agent that did not stop cleanly.
        # Replace it at the version read; a Conflict (someone else wrote) is retried.
        schema = self.entry.schema
        current = await client.get(schema, self._options.pod, self._options.namespace)
        metadata = dataclasses.replace(
            self.entry.metadata, resource_version=current.metadata.resource_version
        )
        return await client.update(dataclasses.replace(self.entry, metadata=metadata))

    async def deregister(self) -> None:
        """Deletes the entry; gives up (logged) after `deregister_timeout` seconds."""
        if not self._maybe_registered:
            return
        backoff = Backoff(self._options.min_backoff, self._options.max_backoff)
        schema, name, namespace = self.entry.schema, self._options.pod, self._options.namespace
        try:
            async with (
                asyncio.timeout(self._options.deregister_timeout),
                ConfigClient(self._options.store_url) as client,
            ):
                while True:
                    try:
                        await client.delete(schema, name, namespace)
                    except errors.NotFound:
                        pass
                    except errors.Unavailable as error:
                        delay = backoff.next_delay()
                        log.warning("cannot deregister yet (%s); retrying in %.3gs", error, delay)
                        await asyncio.sleep(delay)
                        continue
                    break
        except TimeoutError:
            log.error(
                "gave up deleting WorkloadEntry %s/%s after %gs",
                namespace,
                name,
                self._options.deregister_timeout,
            )
            return
        self._maybe_registered = False
        log.info("deregistered WorkloadEntry %s/%s", namespace, name)
