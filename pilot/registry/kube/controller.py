"""The Kubernetes registry: Services, EndpointSlices (or Endpoints) and Pods, listed and watched.

One loop per kind, as Kubernetes' informers run: list every object (all namespaces), then
watch from the list's resourceVersion, keeping the newest version seen (bookmarks included);
when the server ends a watch, watch again from there; on 410 Gone, list again and take what
changed meanwhile from the difference; when the API server cannot be reached, keep the last
view, back off and retry. Each change re-converts only the Services it touches (a pod's
Services are the ones whose endpoints name it) and publishes the new view; handlers hear
exactly what changed (pilot/registry/snapshot.py). Nodes, where the server serves them, are
followed the same way for their topology labels (a pod's locality, unless its own label
says it): a node whose labels change re-converts the Services of its pods. `has_synced()`
once every kind followed has been listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import Any

from pilot.model.service import DOMAIN_SUFFIX, Endpoint, Service
from pilot.registry.kube import conversion
from pilot.registry.kube.client import Event, Expired, Kind, KubeClient, KubeUnavailable
from pilot.registry.provider import Provider
from pilot.registry.snapshot import RegistrySnapshot, SnapshotRegistry
from pkg.aio.backoff import Backoff

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)


@dataclasses.dataclass(frozen=True)
class KubeOptions:
    domain: str = DOMAIN_SUFFIX  # --domain: services are <name>.<namespace>.svc.<domain>
    trust_domain: str = DOMAIN_SUFFIX
    backoff_min: float = 0.2
    backoff_max: float = 30.0


@dataclasses.dataclass(frozen=True)
class WatchStatus:
    """For /debug/registryz."""

    state: str  # "syncing" | "synced" | "unreachable"
    last_error: str
    last_sync: float
    endpoints_from: str  # "endpointslices" or "endpoints"
    services: int
    pods: int
    relists: int  # lists after the first (410s, reconnects)


class KubeRegistry(SnapshotRegistry):
    provider = Provider.KUBERNETES.value

    def __init__(self, *, client: KubeClient, options: KubeOptions | None = None) -> None:
        super().__init__()
        self._client = client
        self._options = options or KubeOptions()
        self._objects: dict[Kind, dict[Key, Any]] = {}
        self._endpoints_kind = Kind.ENDPOINT_SLICES
        self._kinds: tuple[Kind, ...] = (Kind.SERVICES, Kind.ENDPOINT_SLICES, Kind.PODS)
        self._listed: set[Kind] = set()
        self._failing: set[Kind] = set()
        self._last_error = ""
        self._last_sync = 0.0
        self._relists = 0
        # Which Services each pod's addresses serve, to re-convert those when the pod moves.
        self._services_of_pod: dict[Key, set[Key]] = {}

    def has_synced(self) -> bool:
        return self._listed >= set(self._kinds)

    def status(self) -> WatchStatus:
        state = "synced" if self.has_synced() else "syncing"
        if self._failing:
            state = "unreachable"
        return WatchStatus(
            state=state,
            last_error=self._last_error,
            last_sync=self._last_sync,
            endpoints_from=self._endpoints_kind.value,
            services=len(self.snapshot.services),
            pods=len(self._objects.get(Kind.PODS, {})),
            relists=self._relists,
        )

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._handlers.run(), name="kube-handlers")
                if started is not None:
                    started.set()
                self._endpoints_kind = await self._choose_endpoints()
                kinds = [Kind.SERVICES, self._endpoints_kind, Kind.PODS]
                if await self._serves(Kind.NODES):
                    kinds.append(Kind.NODES)
                self._kinds = tuple(kinds)
                for kind in kinds:
                    self._objects[kind] = {}
                    group.create_task(self._follow(kind), name=f"kube-watch-{kind.value}")
        finally:
            await self._client.close()

    async def _choose_endpoints(self) -> Kind:
        """EndpointSlices where the API server serves them (every cluster since 1.21)."""
        found = await self._serves(Kind.ENDPOINT_SLICES)
        return Kind.ENDPOINT_SLICES if found else Kind.ENDPOINTS

    async def _serves(self, kind: Kind) -> bool:
        backoff = self._backoff()
        while True:
            try:
                found = await self._client.serves(kind)
            except KubeUnavailable as error:
                await self._failed(kind, error, backoff)
                continue
            self._failing.discard(kind)
            return found

    async def _follow(self, kind: Kind) -> None:
        backoff = self._backoff()
        version = ""
        while True:
            try:
                if not version:
                    version = await self._relist(kind)
                opened, seen = time.monotonic(), 0
                async with contextlib.aclosing(self._client.watch(kind, version)) as events:
                    async for event in events:
                        seen += 1
                        if event.resource_version:
                            version = event.resource_version
                        if event.type != "BOOKMARK":
                            self._apply(kind, event)
                self._failing.discard(kind)
                if not seen and time.monotonic() - opened < 1.0:
                    # A server that ends watches at once: do not ask again in a tight loop.
                    await asyncio.sleep(backoff.next_delay())
                else:
                    backoff.reset()
            except Expired as error:
                log.info("kube %s: %s; listing again", kind.value, error)
                version = ""
            except KubeUnavailable as error:
                # Resume from the last version once it answers again; a 410 then relists.
                await self._failed(kind, error, backoff)

    async def _relist(self, kind: Kind) -> str:
        listed = await self._client.list(kind)
        fresh = {_key(obj): obj for obj in listed.items}
        old = self._objects[kind]
        changed = {
            k for k in fresh.keys() | old.keys() if _version(fresh.get(k)) != _version(old.get(k))
        }
        self._objects[kind] = fresh
        if kind in self._listed:
            self._relists += 1
        self._listed.add(kind)
        self._failing.discard(kind)
        self._last_sync = time.time()
        affected: set[Key] = set()
        for key in changed:
            affected |= self._touched(kind, key, old.get(key), fresh.get(key))
        self._convert(affected)
        return listed.resource_version

    def _apply(self, kind: Kind, event: Event) -> None:
        obj = event.object
        key = _key(obj)
        objects = self._objects[kind]
        before = objects.get(key)
        if event.type == "DELETED":
            objects.pop(key, None)
            after = None
        else:
            objects[key] = obj
            after = obj
        self._last_sync = time.time()
        self._convert(self._touched(kind, key, before, after))

    def _touched(self, kind: Kind, key: Key, before: Any, after: Any) -> set[Key]:
        """The Services a change of one object may change."""
        namespace = key[0]
        if kind == Kind.SERVICES:
            return {key}
        if kind == Kind.PODS:
            return set(self._services_of_pod.get(key, ()))
        if kind == Kind.NODES:
            if _labels(before) == _labels(after):
                return set()  # a node's status moves often; only its labels place pods
            return {
                service
                for pod_key, pod in self._objects.get(Kind.PODS, {}).items()
                if (pod.spec.node_name or "") == key[1]
                for service in self._services_of_pod.get(pod_key, ())
            }
        if kind == Kind.ENDPOINTS:
            return {key}
        owners = set()
        for obj in (before, after):
            if obj is not None and (name := conversion.slice_service(obj)):
                owners.add((namespace, name))
        return owners

    def _convert(self, keys: Iterable[Key]) -> None:
        keys = set(keys)
        if not keys:
            return
        snapshot = self.snapshot
        services = dict(snapshot.services)
        endpoints = dict(snapshot.endpoints)
        hosts = set()
        for key in keys:
            host = conversion.hostname(key[1], key[0], self._options.domain)
            hosts.add(host)
            old = services.pop(host, None)
            if old is not None:
                for port in old.ports:
                    endpoints.pop((host, port.number), None)
            for pod_services in self._services_of_pod.values():
                pod_services.discard(key)
            svc_obj = self._objects[Kind.SERVICES].get(key)
            if svc_obj is None:
                continue
            service = conversion.service(
                svc_obj, domain=self._options.domain, trust_domain=self._options.trust_domain
            )
            services[host] = service
            for number, instances in self._instances(key, service).items():
                endpoints[(host, number)] = instances
        self.publish(RegistrySnapshot(services=services, endpoints=endpoints), hosts)

    def _instances(self, key: Key, service: Service) -> dict[int, tuple[Endpoint, ...]]:
        pods = self._objects.get(Kind.PODS, {})
        nodes = {name: _labels(n) for (_, name), n in self._objects.get(Kind.NODES, {}).items()}
        if self._endpoints_kind == Kind.ENDPOINTS:
            found = self._objects[Kind.ENDPOINTS].get(key)
            subsets = (found.subsets or ()) if found is not None else ()
            references = [
                address.target_ref
                for subset in subsets
                for address in (*(subset.addresses or ()), *(subset.not_ready_addresses or ()))
            ]
            instances = conversion.instances_from_endpoints(service, found, pods, nodes)
        else:
            slices = [
                s
                for (ns, _), s in self._objects[Kind.ENDPOINT_SLICES].items()
                if ns == key[0] and conversion.slice_service(s) == key[1]
            ]
            references = [e.target_ref for s in slices for e in s.endpoints or ()]
            instances = conversion.instances_from_slices(service, slices, pods, nodes)
        for reference in references:
            if reference is not None and reference.kind == "Pod":
                pod_key = (reference.namespace or key[0], reference.name or "")
                self._services_of_pod.setdefault(pod_key, set()).add(key)
        return instances

    async def _failed(self, kind: Kind, error: Exception, backoff: Backoff) -> None:
        self._failing.add(kind)
        self._last_error = f"{kind.value}: {error}"
        delay = backoff.next_delay()
        log.warning("kube %s: %s; retrying in %.1fs", kind.value, error, delay)
        await asyncio.sleep(delay)

    def _backoff(self) -> Backoff:
        return Backoff(self._options.backoff_min, self._options.backoff_max, jitter=0.2)


def _key(obj: Any) -> Key:
    return (obj.metadata.namespace or "", obj.metadata.name)


def _labels(obj: Any) -> dict[str, str]:
    return {} if obj is None else dict(obj.metadata.labels or {})


def _version(obj: Any) -> str | None:
    return None if obj is None else str(obj.metadata.resource_version)
