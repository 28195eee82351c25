"""`istioctl kube-inject`: the sidecar added to the pod templates of a YAML stream.

Each document that carries a pod (Pod, Deployment, DaemonSet, StatefulSet, ReplicaSet,
ReplicationController, Job, CronJob, DeploymentConfig, and a List of them) gets its pod
template injected as the webhook would inject the pods it makes; other documents pass
through unchanged. Pods with host networking or with injection turned off are left alone
with a warning, as Istio's kube-inject does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import yaml

from pkg.inject import policy
from pkg.inject.config import InjectionConfig, Settings
from pkg.inject.inject import InjectionError, Workload, inject_pod, workload_of

_TEMPLATED = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job",
              "DeploymentConfig"}  # fmt: skip
_ENABLED = InjectionConfig(policy="enabled")


class KubeInjectError(ValueError):
    pass


def _pod_of(
    document: dict[str, Any],
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], None]] | None:
    """The pod template a document holds, and how to put an injected one back."""
    kind = document.get("kind")
    if kind == "Pod":

        def put_pod(pod: dict[str, Any]) -> None:
            document["metadata"], document["spec"] = pod["metadata"], pod["spec"]

        return {
            "metadata": document.get("metadata") or {},
            "spec": document.get("spec") or {},
        }, put_pod
    if kind == "CronJob":
        # As Istio's kube-inject: the job template's metadata with the pod template's spec.
        job_template = (document.get("spec") or {}).get("jobTemplate") or {}
        template = (job_template.get("spec") or {}).get("template")
        if not isinstance(template, dict):
            raise KubeInjectError(
                f"CronJob {(document.get('metadata') or {}).get('name', '')}: spec.jobTemplate.spec.template is required value"
            )

        pod_template: dict[str, Any] = template

        def put_job(pod: dict[str, Any]) -> None:
            job_template["metadata"], pod_template["spec"] = pod["metadata"], pod["spec"]

        return {
            "metadata": job_template.get("metadata") or {},
            "spec": template.get("spec") or {},
        }, put_job
    if kind not in _TEMPLATED:
        return None
    template = (document.get("spec") or {}).get("template")
    if not isinstance(template, dict):
        raise KubeInjectError(
            f"{kind} {(document.get('metadata') or {}).get('name', '')}: spec.template is required value"
        )

    def put(pod: dict[str, Any]) -> None:
        template["metadata"], template["spec"] = pod["metadata"], pod["spec"]

    return {"metadata": template.get("metadata") or {}, "spec": template.get("spec") or {}}, put


def inject_object(document: Any, settings: Settings, warn: Callable[[str], None]) -> Any:
    if not isinstance(document, dict):
        return document
    if document.get("kind") == "List" and isinstance(document.get("items"), list):
        out = copy.deepcopy(document)
        out["items"] = [inject_object(item, settings, warn) for item in document["items"]]
        return out
    document = copy.deepcopy(document)
    found = _pod_of(document)
    if found is None:
        return document
    pod, put = found
    meta = document.get("metadata") or {}
    kind = document.get("kind", "")
    if kind == "Pod":
        workload = workload_of(pod)
    else:
        workload = Workload(
            meta.get("name", ""), meta.get("namespace", ""), document.get("apiVersion", ""), kind
        )
    full = f"{workload.namespace}/{pod['metadata'].get('name') or workload.name}" if workload.namespace else (
        pod["metadata"].get("name") or workload.name)  # fmt: skip
    if pod["spec"].get("hostNetwork"):
        warn(f'===> Skipping injection because {kind} "{full}" has host networking enabled')
        return document
    if not policy.inject_required(_ENABLED, pod):
        warn(f'===> Skipping injection because {kind} "{full}" has sidecar injection disabled')
        return document
    try:
        injected = inject_pod(pod, settings, workload=workload)
    except InjectionError as error:
        raise KubeInjectError(f"{kind} {full}: {error}") from None
    put(injected)
    return document


def into_resource_text(
    text: str, settings: Settings, warn: Callable[[str], None] = lambda _: None
) -> str:
    """The YAML stream with every pod template injected; documents end with `---`."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise KubeInjectError(f"not valid YAML: {error}") from None
    out = []
    for document in documents:
        if document is None:
            continue
        injected = inject_object(document, settings, warn)
        out.append(
            yaml.safe_dump(injected, default_flow_style=False, sort_keys=True, width=1 << 20)
        )
        out.append("---\n")
    return "".join(out)
