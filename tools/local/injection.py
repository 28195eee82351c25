"""Sidecar injection on the local platform, where no admission webhook runs yet.

On a cluster, istiod's mutating webhook adds the sidecar to each pod as the pod is created,
when the pod's namespace asks for it (`istio-injection=enabled`) and the pod does not refuse
(`sidecar.istio.io/inject: "false"`), or when the pod itself asks (`"true"`). Locally the
controller that creates a Deployment's pods applies the same policy and adds what the webhook
adds that this platform uses: the `istio-proxy` container (Istio's proxyv2 image, its args
and downward-API environment, its readiness probe on 15021), the labels Istio gives injected
pods (`security.istio.io/tlsMode: istio`, the canonical service name and revision) and the
`sidecar.istio.io/status` annotation. No `istio-init` container: without root there is no
traffic interception, and apps reach their sidecar as their HTTP proxy.

When istiod's injection (issue 13 part 4) is on main, the platform should ask it instead.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

INJECT = "sidecar.istio.io/inject"
STATUS = "sidecar.istio.io/status"
NAMESPACE_LABEL = "istio-injection"
PROXY = "istio-proxy"
PROXY_IMAGE = "docker.io/istio/proxyv2:1.20.3"
TLS_MODE = "security.istio.io/tlsMode"
CANONICAL_NAME = "service.istio.io/canonical-name"
CANONICAL_REVISION = "service.istio.io/canonical-revision"


def wanted(namespace_labels: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
    """Istio's injection policy (`enabled`): the namespace opts in and the pod does not opt
    out, or the pod opts in; never a pod on the host network or one already injected."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork") or (meta.get("annotations") or {}).get(STATUS):
        return False
    if any(c.get("name") == PROXY for c in spec.get("containers") or []):
        return False
    pod_says = (meta.get("labels") or {}).get(INJECT, (meta.get("annotations") or {}).get(INJECT))
    namespace_says = namespace_labels.get(NAMESPACE_LABEL)
    if namespace_says == "disabled":
        return False
    if pod_says is not None:
        return str(pod_says).lower() in ("true", "y", "yes", "on")
    return namespace_says == "enabled"


def inject(pod: Mapping[str, Any], workload: str) -> dict[str, Any]:
    """The pod with its sidecar, as istiod's injector writes it (the parts used here)."""
    out = copy.deepcopy(dict(pod))
    meta = out.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    labels.setdefault(TLS_MODE, "istio")
    labels.setdefault(
        CANONICAL_NAME, labels.get("app.kubernetes.io/name") or labels.get("app") or workload
    )
    labels.setdefault(
        CANONICAL_REVISION,
        labels.get("app.kubernetes.io/version") or labels.get("version") or "latest",
    )
    spec = out.setdefault("spec", {})
    containers = spec.setdefault("containers", [])
    annotations = meta.setdefault("annotations", {})
    if containers:
        annotations.setdefault("kubectl.kubernetes.io/default-container", containers[0]["name"])
        annotations.setdefault(
            "kubectl.kubernetes.io/default-logs-container", containers[0]["name"]
        )
    annotations[STATUS] = json.dumps(
        {
            "initContainers": None,
            "containers": [PROXY],
            "volumes": None,
            "imagePullSecrets": None,
            "revision": "default",
        },
        separators=(",", ":"),
    )
    containers.append(_proxy(workload))
    return out


def _field(path: str) -> dict[str, Any]:
    return {"valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _proxy(workload: str) -> dict[str, Any]:
    return {
        "name": PROXY,
        "image": PROXY_IMAGE,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "env": [
            {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
            {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
            {"name": "POD_NAME", **_field("metadata.name")},
            {"name": "POD_NAMESPACE", **_field("metadata.namespace")},
            {"name": "INSTANCE_IP", **_field("status.podIP")},
            {"name": "SERVICE_ACCOUNT", **_field("spec.serviceAccountName")},
            {"name": "HOST_IP", **_field("status.hostIP")},
            {"name": "ISTIO_META_WORKLOAD_NAME", "value": workload},
            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
            {"name": "ISTIO_META_MESH_ID", "value": "cluster.local"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"},
            "initialDelaySeconds": 0,
            "periodSeconds": 1,
            "failureThreshold": 30,
            "timeoutSeconds": 3,
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsUser": 1337,
            "runAsGroup": 1337,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
        },
    }
