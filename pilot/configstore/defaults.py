"""Kubernetes' defaulting of its built-in kinds: what the API server fills in before it stores.

The values are Kubernetes' own (SetDefaults_* of pkg/apis/core/v1, apps/v1, discovery/v1,
and the ServiceAccount admission plugin's `serviceAccountName: default`). The mesh relies on
several: a Service port's targetPort is its port and its protocol TCP, a pod runs as the
`default` service account unless it names one, a Deployment without replicas wants one.
Each function takes an object's body (the fields besides apiVersion, kind and metadata) and
its labels, and returns them defaulted; nothing else is changed.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

_Body = dict[str, Any]
_Labels = dict[str, str]

_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1}
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _set(obj: dict[str, Any], key: str, value: Any) -> None:
    if obj.get(key) in (None, ""):
        obj[key] = value


def namespace(name: str, body: _Body, labels: _Labels) -> tuple[_Body, _Labels]:
    spec = body.setdefault("spec", {})
    _set(spec, "finalizers", ["kubernetes"])
    # NamespaceDefaultLabelName (GA in 1.22): selectors can pick a namespace by its name.
    return body, {**labels, "kubernetes.io/metadata.name": name}


def service(name: str, body: _Body, labels: _Labels) -> tuple[_Body, _Labels]:
    spec = body.setdefault("spec", {})
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    kind = spec["type"]
    if kind != "ExternalName":
        _set(spec, "internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    for port in spec.get("ports") or []:
        _set(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    return body, labels


def endpoints(name: str, body: _Body, labels: _Labels) -> tuple[_Body, _Labels]:
    for subset in body.get("subsets") or []:
        for port in subset.get("ports") or []:
            _set(port, "protocol", "TCP")
    return body, labels


def endpoint_slice(name: str, body: _Body, labels: _Labels) -> tuple[_Body, _Labels]:
    for port in body.get("ports") or []:
        _set(port, "protocol", "TCP")
        if port.get("name") is None:
            port["name"] = ""
    return body, labels


def secret(name: str, body: _Body, labels: _Labels) -> tuple[_Body, _Labels]:
    _set(body, "type", "Opaque")
    # stringData is write-only: the API server folds it into data.
    written = body.pop("stringData", None) or {}
    if written:
        data = body.setdefault("data", {})
        for key, value in written.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    return body, labels


def pod(name: str, body: _Body, labels: _Labels) -> tuple[_Body, _Labels]:
    body["spec"] = pod_spec(body.setdefault("spec", {}))
    return body, labels


def deployment(name: str, body: _Body, labels: _Labels) -> tuple[_Body, _Labels]:
    spec = body.setdefault("spec", {})
    _set(spec, "replicas", 1)
    strategy = spec.setdefault("strategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        _set(rolling, "maxUnavailable", "25%")
        _set(rolling, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    template = spec.setdefault("template", {})
    template["spec"] = pod_spec(template.get("spec") or {})
    return body, labels


def pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    _set(spec, "restartPolicy", "Always")
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "schedulerName", "default-scheduler")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    # The ServiceAccount admission plugin: every pod runs as some account, `default` if none.
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = account
    spec["serviceAccount"] = account  # the deprecated mirror the API server keeps in step
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            _container(container)
    for volume in spec.get("volumes") or []:
        if len(volume) == 1:  # a name and no source: an emptyDir
            volume["emptyDir"] = {}
    return spec


def _container(container: dict[str, Any]) -> None:
    _set(container, "terminationMessagePath", "/dev/termination-log")
    _set(container, "terminationMessagePolicy", "File")
    _set(container, "imagePullPolicy", image_pull_policy(str(container.get("image") or "")))
    if container.get("resources") is None:
        container["resources"] = {}
    for port in container.get("ports") or []:
        _set(port, "protocol", "TCP")
    for variable in container.get("env") or []:
        field = (variable.get("valueFrom") or {}).get("fieldRef")
        if isinstance(field, dict):
            _set(field, "apiVersion", "v1")
    for name in _PROBES:
        probe = container.get(name)
        if isinstance(probe, dict):
            for key, value in _PROBE_DEFAULTS.items():
                _set(probe, key, value)
            _set(probe, "failureThreshold", 3)
            if isinstance(probe.get("httpGet"), dict):
                _set(probe["httpGet"], "scheme", "HTTP")


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, else IfNotPresent (Kubernetes' rule)."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def qos_class(spec: dict[str, Any]) -> str:
    """The pod's quality-of-service class, from its containers' requests and limits."""
    requests: list[dict[str, Any]] = []
    limits: list[dict[str, Any]] = []
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {}
        requests.append(resources.get("requests") or {})
        limits.append(resources.get("limits") or {})
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        limit.get(r) is not None and (request.get(r) or limit.get(r)) == limit.get(r)
        for request, limit in zip(requests, limits, strict=True)
        for r in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


DEFAULTERS: dict[str, Callable[[str, _Body, _Labels], tuple[_Body, _Labels]]] = {
    "Namespace": namespace,
    "Service": service,
    "Endpoints": endpoints,
    "EndpointSlice": endpoint_slice,
    "Secret": secret,
    "Pod": pod,
    "Deployment": deployment,
}


def apply(kind: str, name: str, body: _Body, labels: _Labels) -> tuple[_Body, _Labels]:
    """The kind's defaults applied to a copy of `body` (and the labels it adds)."""
    defaulter = DEFAULTERS.get(kind)
    if defaulter is None:
        return body, labels
    return defaulter(name, copy.deepcopy(body), dict(labels))
