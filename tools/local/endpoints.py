"""The endpoints controllers of the local platform: each Service's EndpointSlices and Endpoints.

As Kubernetes' endpointslice and endpoints controllers: for every Service with a selector, the
pods of its namespace the selector matches and that have an address become its endpoints;
each service port's `targetPort` is resolved per pod (a number, or the name of a container
port); an endpoint is `ready` (and `serving`) while its pod's Ready condition is True and
`terminating` once the pod is being deleted (ready then false, as traffic must drain).
Slices carry `kubernetes.io/service-name` and the controller's `managed-by` label and are owned
by their Service; pods whose ports resolve alike share a slice. The Endpoints object of the
same name lists ready addresses and `notReadyAddresses`. Nothing is written that did not
change; a Service's slices and Endpoints go with it. Services without a selector are their
owners' to fill, and left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException

from tools.local.kubeinformer import Informer, Key, Object, key_of
from tools.local.workqueue import WorkQueue

log = logging.getLogger("endpoints")

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _ready(pod: Object) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def resolve_port(port: Mapping[str, Any], pod: Object) -> int | None:
    """A service port's targetPort on this pod."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == target and declared.get("protocol", "TCP") == port.get(
                "protocol", "TCP"
            ):
                return int(declared["containerPort"])
    return None


def slices_of(service: Object, pods: list[Object]) -> list[dict[str, Any]]:
    """The endpoints and ports of each slice the Service should have (name and metadata apart)."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[tuple[str, int, str], ...], list[dict[str, Any]]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            continue
        ports = []
        for port in spec.get("ports") or []:
            number = resolve_port(port, pod)
            if number is not None:
                ports.append(
                    (str(port.get("name") or ""), number, str(port.get("protocol") or "TCP"))
                )
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        serving = _ready(pod) or publish_not_ready
        endpoint = {
            "addresses": [ip],
            "conditions": {
                "ready": serving and not terminating,
                "serving": serving,
                "terminating": terminating,
            },
            "targetRef": {
                "kind": "Pod",
                "namespace": pod["metadata"]["namespace"],
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
        }
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            endpoint["nodeName"] = node
        groups.setdefault(tuple(ports), []).append(endpoint)
    return [
        {
            "addressType": "IPv4",
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
            "endpoints": endpoints,
        }
        for ports, endpoints in groups.items()
    ]


def endpoints_of(slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Endpoints object's subsets for the same endpoints."""
    subsets = []
    for group in slices:
        ready, not_ready = [], []
        for endpoint in group["endpoints"]:
            address = {"ip": endpoint["addresses"][0], "targetRef": endpoint["targetRef"]}
            if endpoint.get("nodeName"):
                address["nodeName"] = endpoint["nodeName"]
            conditions = endpoint["conditions"]
            if conditions["ready"]:
                ready.append(address)
            elif not conditions["terminating"]:
                not_ready.append(address)
        subset: dict[str, Any] = {"ports": group["ports"]}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if ready or not_ready:
            subsets.append(subset)
    return subsets


class EndpointsController:
    def __init__(self, api: client.ApiClient, pods: Informer) -> None:
        self._core = client.CoreV1Api(api)
        self._discovery = client.DiscoveryV1Api(api)
        self.pods = pods
        self.queue: WorkQueue[Key] = WorkQueue("endpoints", self.reconcile)
        self.services = Informer(
            "services", self._core.list_service_for_all_namespaces, self._service_changed
        )
        self.slices = Informer(
            "endpointslices",
            self._discovery.list_endpoint_slice_for_all_namespaces,
            self._slice_changed,
        )
        self.endpoints = Informer(
            "endpoints", self._core.list_endpoints_for_all_namespaces, self._endpoints_changed
        )

    async def _service_changed(self, before: Object | None, after: Object | None) -> None:
        self.queue.add(key_of(after or before or {}))

    async def _slice_changed(self, before: Object | None, after: Object | None) -> None:
        labels = ((after or before or {}).get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY) == CONTROLLER and labels.get(SERVICE_NAME):
            self.queue.add((key_of(after or before or {})[0], labels[SERVICE_NAME]))

    async def _endpoints_changed(self, before: Object | None, after: Object | None) -> None:
        self.queue.add(key_of(after or before or {}))

    async def pod_changed(self, before: Object | None, after: Object | None) -> None:
        pod = after or before or {}
        namespace = key_of(pod)[0]
        labels = [((p or {}).get("metadata") or {}).get("labels") or {} for p in (before, after)]
        for (ns, name), service in list(self.services.cache.items()):
            selector = (service.get("spec") or {}).get("selector") or {}
            if ns == namespace and any(selects(selector, found) for found in labels):
                self.queue.add((ns, name))

    async def reconcile(self, key: Key) -> None:
        namespace, name = key
        service = self.services.get(namespace, name)
        managed = [
            s
            for (ns, _), s in self.slices.cache.items()
            if ns == namespace
            and (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name
            and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER
        ]
        if service is None:
            for old in managed:
                await self._delete_slice(old)
            if self.endpoints.get(namespace, name) is not None:
                await _ignore_missing(self._core.delete_namespaced_endpoints(name, namespace))
            return
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            return
        pods = [
            p
            for (ns, _), p in self.pods.cache.items()
            if ns == namespace
            and selects(selector, p["metadata"].get("labels") or {})
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        wanted = slices_of(service, pods)
        await self._write_slices(service, managed, wanted)
        await self._write_endpoints(service, endpoints_of(wanted))

    async def _write_slices(
        self, service: Object, managed: list[Object], wanted: list[dict[str, Any]]
    ) -> None:
        meta = service["metadata"]
        remaining = sorted(managed, key=lambda s: s["metadata"]["name"])
        if not wanted:
            # Kubernetes keeps one slice without endpoints: readers learn "none" from it.
            wanted = [{"addressType": "IPv4", "ports": [], "endpoints": []}]
        for content in wanted:
            same = next((s for s in remaining if s.get("ports") == content["ports"]), None)
            existing = same or (remaining[0] if remaining else None)
            if existing is not None:
                remaining.remove(existing)
                if (existing.get("endpoints") or []) == content["endpoints"] and (
                    existing.get("ports") or []
                ) == content["ports"]:
                    continue
                body = {
                    **content,
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {**existing["metadata"], "labels": _labels(meta)},
                }
                body["metadata"].pop("managedFields", None)
                await self._discovery.replace_namespaced_endpoint_slice(
                    existing["metadata"]["name"], meta["namespace"], body
                )
                continue
            body = {
                **content,
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "generateName": f"{meta['name']}-",
                    "namespace": meta["namespace"],
                    "labels": _labels(meta),
                    "ownerReferences": [_owner(meta)],
                },
            }
            await self._discovery.create_namespaced_endpoint_slice(meta["namespace"], body)
        for old in remaining:
            await self._delete_slice(old)

    async def _write_endpoints(self, service: Object, subsets: list[dict[str, Any]]) -> None:
        meta = service["metadata"]
        existing = self.endpoints.get(meta["namespace"], meta["name"])
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": dict(meta.get("labels") or {}),
            },
            "subsets": subsets,
        }
        if existing is None:
            await self._core.create_namespaced_endpoints(meta["namespace"], body)
            return
        if (existing.get("subsets") or []) == subsets:
            return
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        await self._core.replace_namespaced_endpoints(meta["name"], meta["namespace"], body)

    async def _delete_slice(self, endpoint_slice: Object) -> None:
        meta = endpoint_slice["metadata"]
        await _ignore_missing(
            self._discovery.delete_namespaced_endpoint_slice(meta["name"], meta["namespace"])
        )


def _labels(service_meta: Mapping[str, Any]) -> dict[str, str]:
    return {
        **(service_meta.get("labels") or {}),
        SERVICE_NAME: service_meta["name"],
        MANAGED_BY: CONTROLLER,
    }


def _owner(service_meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": service_meta["name"],
        "uid": service_meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def _ignore_missing(call: Any) -> None:
    try:
        await call
    except ApiException as error:
        if error.status != 404:
            raise
