"""Cells of `kubectl get` that Kubernetes computes for its own kinds, as its printers do.

A built-in kind's printer column in kinds.yaml names one of these (`printer: pod-ready`). Each
takes the stored object and returns the cell Kubernetes' API server puts in the Table it
answers kubectl with (kubernetes/pkg/printers/internalversion/printers.go): `2/2`,
`Running`, `9080/TCP`, `<none>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_Object = Mapping[str, Any]
_NONE = "<none>"
_SHOWN_ADDRESSES = 3  # Kubernetes lists this many, then "+ N more..."


def _list(obj: Any, *keys: str) -> list[Any]:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj if isinstance(obj, list) else []


def _map(obj: Any, *keys: str) -> Mapping[str, Any]:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj if isinstance(obj, Mapping) else {}


def pod_ready(pod: _Object) -> str:
    statuses = _list(pod, "status", "containerStatuses")
    # A sidecar the local kubelet adds at start (no webhook put it in the spec) has a status
    # and is counted, as it is once injected on a cluster.
    total = max(len(_list(pod, "spec", "containers")), len(statuses))
    ready = sum(1 for s in statuses if isinstance(s, Mapping) and s.get("ready") is True)
    return f"{ready}/{total}"


def pod_status(pod: _Object) -> str:
    status = _map(pod, "status")
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    for init in _list(pod, "status", "initContainerStatuses"):
        state = _map(init, "state")
        if _map(state, "terminated").get("exitCode", 0) == 0 and "terminated" in state:
            continue
        waiting = _map(state, "waiting").get("reason")
        reason = f"Init:{waiting}" if waiting and waiting != "PodInitializing" else "Init:0/1"
        break
    else:
        running = False
        for container in reversed(_list(pod, "status", "containerStatuses")):
            state = _map(container, "state")
            waiting, terminated = _map(state, "waiting"), _map(state, "terminated")
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated.get("reason"):
                reason = str(terminated["reason"])
            elif "terminated" in state:
                signal = terminated.get("signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode')}"
            elif container.get("ready") and "running" in state:
                running = True
        if reason == "Completed" and running:
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in _list(pod, "status", "conditions")
            )
            reason = "Running" if ready else "NotReady"
    if _map(pod, "metadata").get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def pod_restarts(pod: _Object) -> str:
    return str(
        sum(int(c.get("restartCount") or 0) for c in _list(pod, "status", "containerStatuses"))
    )


def service_external_ip(service: _Object) -> str:
    spec = _map(service, "spec")
    kind = spec.get("type") or "ClusterIP"
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    if kind == "LoadBalancer":
        ingress = [
            str(i.get("ip") or i.get("hostname"))
            for i in _list(service, "status", "loadBalancer", "ingress")
        ]
        return ",".join(ingress + external) or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or _NONE)
    return ",".join(external) or _NONE


def service_ports(service: _Object) -> str:
    shown = []
    for port in _list(service, "spec", "ports"):
        protocol = port.get("protocol") or "TCP"
        node = f":{port['nodePort']}" if port.get("nodePort") else ""
        shown.append(f"{port.get('port')}{node}/{protocol}")
    return ",".join(shown) or _NONE


def service_selector(service: _Object) -> str:
    selector = _map(service, "spec", "selector")
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or _NONE


def endpoints(obj: _Object) -> str:
    found = []
    for subset in _list(obj, "subsets"):
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for address in subset.get("addresses") or []:
            for port in ports:
                ip = address.get("ip")
                found.append(f"{ip}:{port}" if port is not None else str(ip))
    return _addresses(found) or _NONE


def endpointslice_ports(slice_: _Object) -> str:
    ports = [str(p.get("port")) for p in _list(slice_, "ports") if p.get("port") is not None]
    return ",".join(ports) or "<unset>"


def endpointslice_endpoints(slice_: _Object) -> str:
    found = [str(a) for e in _list(slice_, "endpoints") for a in e.get("addresses") or []]
    return _addresses(found) or "<unset>"


def _addresses(found: list[str]) -> str:
    if len(found) <= _SHOWN_ADDRESSES:
        return ",".join(found)
    more = len(found) - _SHOWN_ADDRESSES
    return ",".join(found[:_SHOWN_ADDRESSES]) + f" + {more} more..."


def deployment_ready(deployment: _Object) -> str:
    wanted = _map(deployment, "spec").get("replicas", 1)
    ready = _map(deployment, "status").get("readyReplicas") or 0
    return f"{ready}/{wanted}"


def deployment_containers(deployment: _Object) -> str:
    containers = _list(deployment, "spec", "template", "spec", "containers")
    return ",".join(str(c.get("name")) for c in containers)


def deployment_images(deployment: _Object) -> str:
    containers = _list(deployment, "spec", "template", "spec", "containers")
    return ",".join(str(c.get("image")) for c in containers)


def deployment_selector(deployment: _Object) -> str:
    labels = _map(deployment, "spec", "selector", "matchLabels")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or _NONE


def count_secrets(account: _Object) -> int:
    return len(_list(account, "secrets"))


def count_data(obj: _Object) -> int:
    return len(_map(obj, "data")) + len(_map(obj, "binaryData"))


PRINTERS: dict[str, Callable[[_Object], Any]] = {
    "pod-ready": pod_ready,
    "pod-status": pod_status,
    "pod-restarts": pod_restarts,
    "service-external-ip": service_external_ip,
    "service-ports": service_ports,
    "service-selector": service_selector,
    "endpoints": endpoints,
    "endpointslice-ports": endpointslice_ports,
    "endpointslice-endpoints": endpointslice_endpoints,
    "deployment-ready": deployment_ready,
    "deployment-containers": deployment_containers,
    "deployment-images": deployment_images,
    "deployment-selector": deployment_selector,
    "count-secrets": count_secrets,
    "count-data": count_data,
}
