"""injection.Analyzer: namespaces not enabled for sidecar injection, pods without a proxy.

Only Kubernetes Namespace and Pod objects are looked at (from files, or from a store that
serves them): the local platform starts every pod with its sidecar, so its own workloads
(WorkloadEntries) never lack one.
"""

from __future__ import annotations

from istioctl.analyze.analyzers.base import Analyzer, Context

INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
INJECT_ANNOTATION = "sidecar.istio.io/inject"
PROXY_CONTAINER = "istio-proxy"
SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}


def check(ctx: Context) -> None:
    system = SYSTEM_NAMESPACES | {ctx.snapshot.istio_namespace}
    injected = set()
    for entry in ctx.snapshot.of("Namespace"):
        if entry.name in system:
            continue
        label = entry.labels.get(INJECTION_LABEL, "")
        if not label and REVISION_LABEL not in entry.labels:
            ctx.report(entry, "NamespaceNotInjected", entry.name, entry.name, path="metadata.name")
            continue
        if label == "enabled" or (not label and REVISION_LABEL in entry.labels):
            injected.add(entry.name)
    for entry in ctx.snapshot.of("Pod"):
        if entry.namespace not in injected:
            continue
        if entry.annotations.get(INJECT_ANNOTATION, "").lower() == "false":
            continue
        spec = entry.spec.get("spec") or {}
        containers = [c.get("name") for c in spec.get("containers") or [] if isinstance(c, dict)]
        if PROXY_CONTAINER not in containers:
            ctx.report(entry, "PodMissingProxy", entry.name, path="spec.containers")


ANALYZERS = (
    Analyzer("injection.Analyzer", "Checks conditions related to Istio sidecar injection", check),
)
