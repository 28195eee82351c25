"""The scheduler of a one-node platform: every pod not yet on a node is bound to the node.

As kube-scheduler writes its decision: a Binding to the pod's `binding` subresource (which sets
`spec.nodeName`, once). Pods that name another scheduler (`spec.schedulerName`) are left to it.
"""

from __future__ import annotations

import logging

from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException

from tools.local.kubeinformer import Informer, Key, Object, key_of
from tools.local.workqueue import WorkQueue

log = logging.getLogger("scheduler")
DEFAULT_SCHEDULER = "default-scheduler"


class Scheduler:
    def __init__(self, api: client.ApiClient, node: str) -> None:
        self._core = client.CoreV1Api(api)
        self._node = node
        self.queue: WorkQueue[Key] = WorkQueue("scheduler", self.reconcile)
        self.pending = Informer(
            "unscheduled pods",
            self._core.list_pod_for_all_namespaces,
            self._changed,
            field_selector="spec.nodeName=",
        )

    async def _changed(self, before: Object | None, after: Object | None) -> None:
        if after is not None:
            self.queue.add(key_of(after))

    async def reconcile(self, key: Key) -> None:
        pod = self.pending.get(*key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        spec = pod.get("spec") or {}
        if (
            spec.get("nodeName")
            or (spec.get("schedulerName") or DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER
        ):
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": key[1], "namespace": key[0], "uid": pod["metadata"]["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self._node},
        }
        try:
            # Without preloading: the API server answers a Status, not the Binding the
            # client's model would want.
            answer = await self._core.create_namespaced_pod_binding_without_preload_content(
                key[1], key[0], binding
            )
            status = answer.status
            answer.release()
        except ApiException as error:
            status = error.status
        if status == 201:
            log.info("bound %s/%s to %s", key[0], key[1], self._node)
        elif status not in (404, 409):  # gone, or bound meanwhile
            raise RuntimeError(f"binding {key[0]}/{key[1]} answered {status}")
