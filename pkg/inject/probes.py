"""Application probes through the sidecar: Istio rewrites each app container's HTTP, TCP and
gRPC probes (and lifecycle hooks) to the agent's status port, `/app-health/<container>/<kind>`,
and tells the agent the originals in ISTIO_KUBE_APP_PROBERS, so kubelet's probes still work
when mutual TLS is on."""

from __future__ import annotations

import copy
from typing import Any

from pkg.gotemplate.funcs import go_json, ordered

KUBE_APP_PROBERS = "ISTIO_KUBE_APP_PROBERS"
REWRITE_ANNOTATION = "sidecar.istio.io/rewriteAppHTTPProbers"
STATUS_PORT_ANNOTATION = "status.sidecar.istio.io/port"
_KINDS = (("readinessProbe", "readyz"), ("livenessProbe", "livez"), ("startupProbe", "startupz"))
_HOOKS = (("preStop", "prestopz"), ("postStart", "poststartz"))


def should_rewrite(annotations: dict[str, str], default: bool) -> bool:
    value = annotations.get(REWRITE_ANNOTATION)
    if value is not None:
        parsed = parse_bool(value)
        if parsed is not None:
            return parsed
    return default


def parse_bool(text: str) -> bool | None:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def prober_url(container: str, kind: str) -> str:
    # Lifecycle hooks have their own prefix (the agent tells them from probes by it).
    prefix = "app-lifecycle" if kind in ("prestopz", "poststartz") else "app-health"
    return f"/{prefix}/{container}/{kind}"


def _all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def _internal(probe: dict[str, Any] | None, with_timeout: bool) -> dict[str, Any] | None:
    if not probe:
        return None
    for action in ("httpGet", "tcpSocket", "grpc"):
        if probe.get(action) is not None:
            out: dict[str, Any] = {action: copy.deepcopy(probe[action])}
            if with_timeout and probe.get("timeoutSeconds"):
                out["timeoutSeconds"] = probe["timeoutSeconds"]
            return out
    return None


def dump_app_probers(pod: dict[str, Any], status_port: int) -> str:
    """ISTIO_KUBE_APP_PROBERS's value: each rewritten URL and the probe it stands for."""
    out: dict[str, Any] = {}
    for container in _all_containers(pod):
        name = container.get("name", "")
        if name == "istio-proxy":
            continue
        ports = {
            p["name"]: p.get("containerPort") for p in container.get("ports") or [] if p.get("name")
        }
        found = [(kind, _internal(container.get(field), True)) for field, kind in _KINDS]
        lifecycle = container.get("lifecycle") or {}
        found += [(kind, _internal(lifecycle.get(field), False)) for field, kind in _HOOKS]
        for kind, prober in found:
            prober = _named_port(prober, ports, status_port)
            if prober is not None:
                out[prober_url(name, kind)] = prober
    if not out:
        return ""
    return go_json({url: ordered(_prober_fields(p)) for url, p in out.items()})


def _prober_fields(prober: dict[str, Any]) -> dict[str, Any]:
    order = ("httpGet", "tcpSocket", "grpc", "timeoutSeconds")
    return {
        k: _http_get_order(prober[k]) if k == "httpGet" else prober[k] for k in order if k in prober
    }


def _http_get_order(action: dict[str, Any]) -> dict[str, Any]:
    keys = ("path", "port", "host", "scheme", "httpHeaders")
    return ordered({k: action[k] for k in keys if k in action})


def _named_port(
    prober: dict[str, Any] | None, ports: dict[str, Any], target: int
) -> dict[str, Any] | None:
    if prober is None:
        return None
    if "grpc" in prober:
        return prober
    action = prober.get("httpGet") or prober.get("tcpSocket")
    if action is None:
        return None
    port = action.get("port")
    if isinstance(port, str) and not port.isdigit():
        if port not in ports:
            return None
        action["port"] = ports[port]
    elif port is not None and int(port) == target:
        return None
    return prober


def rewrite_probes(pod: dict[str, Any], status_port: int) -> None:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    port = status_port
    if STATUS_PORT_ANNOTATION in annotations:
        try:
            port = int(annotations[STATUS_PORT_ANNOTATION])
        except ValueError:
            port = 0
    spec = pod.get("spec") or {}
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            if container.get("name") != "istio-proxy":
                _convert(container, port)


def _convert(container: dict[str, Any], port: int) -> None:
    name = container.get("name", "")
    for field, kind in _KINDS:
        probe = container.get(field)
        converted = _convert_probe(probe, prober_url(name, kind), port, keep_timing=True)
        if converted is not None:
            container[field] = converted
    lifecycle = container.get("lifecycle")
    if lifecycle:
        for field, kind in _HOOKS:
            converted = _convert_probe(
                lifecycle.get(field), prober_url(name, kind), port, keep_timing=False
            )
            if converted is not None:
                lifecycle[field] = converted


def _convert_probe(
    probe: dict[str, Any] | None, url: str, port: int, *, keep_timing: bool
) -> dict[str, Any] | None:
    if not probe:
        return None
    out = copy.deepcopy(probe)
    if out.get("httpGet") is not None:
        action = out["httpGet"]
    elif out.get("tcpSocket") is not None:
        out.pop("tcpSocket")
        action = out["httpGet"] = {}
    elif keep_timing and out.get("grpc") is not None:
        out.pop("grpc")
        action = out["httpGet"] = {}
    else:
        return None
    action["port"] = port
    action["path"] = url
    if action.get("scheme") == "HTTPS":
        action["scheme"] = "HTTP"
    return out
