"""`/inject`: Istio's sidecar injector webhook, on the injection shared with kube-inject.

A Pod CREATE is answered with the JSONPatch from the pod the API server sent to the injected
one (pkg/inject). The pod is left alone, allowed and unpatched, when Istio's policy says so
(its `sidecar.istio.io/inject` label or annotation, the never/always selectors, host
networking) or when its namespace does not select it: the rule the webhook
configuration's namespaceSelector and objectSelector state (`istio-injection=enabled`
injects unless the pod says false; an unlabelled namespace only pods that say true),
checked here too, so that a store that calls the webhook for every pod gets the same
answer as a cluster. Paths `/inject/cluster/<id>/net/<network>` set the proxy's cluster
and network, as Istio's do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import jsonpatch

from pilot.webhooks import admission
from pkg.inject import policy
from pkg.inject.config import Settings
from pkg.inject.inject import InjectionError, inject_pod
from pkg.inject.strategicmerge import drop_nulls

log = logging.getLogger("pilot.webhooks")

# What `/inject/<key>/<value>` sets: Istio's URL parameters and the env they become.
_URL_PARAMETERS = {"cluster": "ISTIO_META_CLUSTER_ID", "net": "ISTIO_META_NETWORK"}

NamespaceLabels = Callable[[str], Awaitable[Mapping[str, str] | None]]


def proxy_envs(path: str) -> dict[str, str]:
    """Istio's parseInjectEnvs: /inject/cluster/c1/net/n1 -> cluster and network env."""
    parts = path.rstrip("/").split("/", 2)
    items = parts[2].split("/") if len(parts) == 3 and parts[2] else []
    envs: dict[str, str] = {}
    for i in range(0, len(items) - 1, 2):
        key, value = items[i], items[i + 1].replace("--slash--", "/")
        name = _URL_PARAMETERS.get(key, key.upper())
        if name:
            envs[name] = value
    return envs


async def review(
    request: admission.AdmissionRequest,
    settings: Settings,
    namespace_labels: NamespaceLabels,
    path: str = "/inject",
) -> dict[str, Any]:
    pod = request.object
    if not isinstance(pod, dict) or pod.get("kind", "Pod") != "Pod":
        return admission.denied(
            request, "could not decode the pod: the request's object is not a Pod"
        )
    pod = dict(pod)
    metadata = dict(pod.get("metadata") or {})
    metadata.pop("managedFields", None)  # large, and nothing injection reads
    if not metadata.get("namespace"):
        metadata["namespace"] = request.namespace
    pod["metadata"] = metadata
    pod = drop_nulls(pod)
    name = metadata.get("name") or f"{metadata.get('generateName', '')}*****"
    if not policy.inject_required(settings.config, pod):
        log.info("pod %s/%s: skipped by the injection policy", metadata["namespace"], name)
        return admission.allowed(request)
    labels = await namespace_labels(metadata["namespace"])
    if labels is not None and not policy.namespace_selects(labels, metadata.get("labels") or {}):
        log.info("pod %s/%s: its namespace does not select injection", metadata["namespace"], name)
        return admission.allowed(request)
    try:
        injected = inject_pod(pod, settings, proxy_envs=proxy_envs(path))
    except InjectionError as error:
        log.warning("pod %s/%s: injection failed: %s", metadata["namespace"], name, error)
        return admission.denied(request, f"Pod injection failed: {error}")
    patch = jsonpatch.make_patch(pod, injected).patch
    log.info("pod %s/%s: injected (%d patch operations)", metadata["namespace"], name, len(patch))
    return admission.allowed(request, patch=patch)
