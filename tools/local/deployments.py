"""The Deployment controller of the local platform: each Deployment's replicas as pods.

As Kubernetes' deployment and replica-set controllers together (without ReplicaSet objects,
a kind this platform does not serve): the pod template's hash names the template's version
(`pod-template-hash`, and pods named `<deployment>-<hash>-<suffix>`); there are as many
pods of the current template as `spec.replicas`, not counting those being deleted (so a
deleted pod is replaced at once); pods of an older template go once the new ones are ready
(a rollout); pods are created with the Deployment as their controlling owner, the sidecar
injected as istiod's webhook would inject it (sidecarinjector.py), and removed with their Deployment
(garbage collection). The Deployment's status (replicas, updated, ready, available,
conditions) is written back. Expectations, as Kubernetes keeps them, stop a reconcile from
creating twice what the informer has not shown yet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException

from pkg.inject.inject import Workload
from tools.local.kubeinformer import Informer, Key, Object, key_of
from tools.local.sidecarinjector import SidecarInjector
from tools.local.workqueue import WorkQueue

log = logging.getLogger("deployments")

TEMPLATE_HASH = "pod-template-hash"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_EXPECTATION_TIMEOUT = 10.0


def template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])


def owner_of(pod: Object) -> tuple[str, str] | None:
    """(name, uid) of the Deployment controlling the pod."""
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("kind") == "Deployment" and owner.get("controller"):
            return str(owner.get("name")), str(owner.get("uid"))
    return None


def is_active(pod: Object) -> bool:
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and (
        pod.get("status") or {}
    ).get("phase") not in ("Succeeded", "Failed")


def is_ready(pod: Object) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


class DeploymentController:
    def __init__(
        self,
        api: client.ApiClient,
        pods: Informer,
        namespaces: Informer,
        injector: SidecarInjector,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self.injector = injector
        self._apps = client.AppsV1Api(api)
        self.pods = pods
        self.namespaces = namespaces
        self.queue: WorkQueue[Key] = WorkQueue("deployments", self.reconcile)
        self.deployments = Informer(
            "deployments", self._apps.list_deployment_for_all_namespaces, self._deployment_changed
        )
        self._expected: dict[Key, tuple[set[str], float]] = {}

    async def _deployment_changed(self, before: Object | None, after: Object | None) -> None:
        self.queue.add(key_of(after or before or {}))

    async def pod_changed(self, before: Object | None, after: Object | None) -> None:
        pod = after or before or {}
        namespace, name = key_of(pod)
        owner = owner_of(pod)
        if owner is None:
            return
        key = (namespace, owner[0])
        expected = self._expected.get(key)
        if expected is not None:
            expected[0].discard(name)
        self.queue.add(key)

    async def reconcile(self, key: Key) -> None:
        namespace, name = key
        deployment = self.deployments.get(namespace, name)
        owned = [
            p
            for (ns, _), p in self.pods.cache.items()
            if ns == namespace and (o := owner_of(p)) and o[0] == name
        ]
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            await self._delete(key, [p for p in owned if is_active(p)])  # garbage collection
            return
        uid = deployment["metadata"]["uid"]
        orphans = [p for p in owned if owner_of(p) != (name, uid)]  # of an earlier Deployment
        await self._delete(key, [p for p in orphans if is_active(p)])
        owned = [p for p in owned if owner_of(p) == (name, uid)]
        pending, since = self._expected.get(key, (set(), 0.0))
        if pending and time.monotonic() - since < _EXPECTATION_TIMEOUT:
            return  # the informer has not shown our last writes yet; they will requeue
        spec = deployment.get("spec") or {}
        wanted = int(spec.get("replicas", 1))
        current_hash = template_hash(spec.get("template") or {})
        active = [p for p in owned if is_active(p)]
        current = [
            p
            for p in active
            if (p["metadata"].get("labels") or {}).get(TEMPLATE_HASH) == current_hash
        ]
        old = [p for p in active if p not in current]
        if len(current) < wanted:
            await self._create(key, deployment, current_hash, wanted - len(current))
        elif len(current) > wanted:
            # As Kubernetes ranks them: unscheduled, then not ready, then the youngest go first.
            ranked = sorted(
                current,
                key=lambda p: (
                    bool((p.get("spec") or {}).get("nodeName")),
                    is_ready(p),
                    _negated(p["metadata"].get("creationTimestamp") or ""),
                ),
            )
            await self._delete(key, ranked[: len(current) - wanted])
        ready_new = sum(1 for p in current if is_ready(p))
        if old and (ready_new >= wanted or wanted == 0):
            await self._delete(key, old)  # the rollout is done: the old template's pods go
        await self._write_status(deployment, active, current)

    async def _create(self, key: Key, deployment: Object, current_hash: str, count: int) -> None:
        namespace, name = key
        template = deployment["spec"].get("template") or {}
        template_meta = template.get("metadata") or {}
        pod: Object = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{name}-{current_hash}-",
                "namespace": namespace,
                "labels": {**(template_meta.get("labels") or {}), TEMPLATE_HASH: current_hash},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": name,
                        "uid": deployment["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
        }
        if template_meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(template_meta["annotations"])
        ns = self.namespaces.get("", namespace)
        if self.injector.wanted(((ns or {}).get("metadata") or {}).get("labels") or {}, pod):
            pod = self.injector.inject(pod, Workload(name, namespace, "apps/v1", "Deployment"))
        pending = self._expected.setdefault(key, (set(), 0.0))[0]
        for _ in range(count):
            created = await self._core.create_namespaced_pod(namespace, pod)
            pending.add(created.metadata.name)
            self._expected[key] = (pending, time.monotonic())
            log.info("%s/%s: created pod %s", namespace, name, created.metadata.name)

    async def _delete(self, key: Key, pods: list[Object]) -> None:
        if not pods:
            return
        pending = self._expected.setdefault(key, (set(), 0.0))[0]
        for pod in pods:
            meta = pod["metadata"]
            try:
                await self._core.delete_namespaced_pod(
                    meta["name"], meta["namespace"], body={"preconditions": {"uid": meta["uid"]}}
                )
            except ApiException as error:
                if error.status not in (404, 409):
                    raise
                continue
            pending.add(meta["name"])
            self._expected[key] = (pending, time.monotonic())
            log.info("%s/%s: deleting pod %s", key[0], key[1], meta["name"])

    async def _write_status(
        self, deployment: Object, active: list[Object], current: list[Object]
    ) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        wanted = int(spec.get("replicas", 1))
        ready = sum(1 for p in active if is_ready(p))
        available = ready
        now = _now()
        previous = {
            c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []
        }

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            value = "True" if ok else "False"
            old = previous.get(kind) or {}
            changed = old.get("lastTransitionTime") if old.get("status") == value else now
            return {
                "type": kind,
                "status": value,
                "lastUpdateTime": old.get("lastUpdateTime") if old.get("reason") == reason else now,
                "lastTransitionTime": changed or now,
                "reason": reason,
                "message": message,
            }

        done = len(current) == wanted and len(active) == wanted and ready >= wanted
        status: dict[str, Any] = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(active),
            "updatedReplicas": len(current),
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": [
                condition(
                    "Available",
                    available >= wanted,
                    "MinimumReplicasAvailable"
                    if available >= wanted
                    else "MinimumReplicasUnavailable",
                    "Deployment has minimum availability."
                    if available >= wanted
                    else "Deployment does not have minimum availability.",
                ),
                condition(
                    "Progressing",
                    True,
                    "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                    f'Pods of template "{meta["name"]}-{template_hash(spec.get("template") or {})}" '
                    + ("are available." if done else "are progressing."),
                ),
            ],
        }
        if wanted > available:
            status["unavailableReplicas"] = wanted - available
        if status == deployment.get("status"):
            return
        await self._apps.patch_namespaced_deployment_status(
            meta["name"], meta["namespace"], {"status": status}
        )


def _negated(timestamp: str) -> str:
    """A key that sorts the youngest first."""
    return "".join(chr(0x10FFFF - ord(c)) for c in timestamp)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
