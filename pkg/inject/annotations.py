"""The pod annotations injection reads, checked before anything is rendered (Istio's
AnnotationValidation): a bad traffic, status or resource annotation refuses the pod with a
message naming the annotation, its value and why."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from pkg.config import mesh as meshconfig


class AnnotationError(ValueError):
    pass


def _port(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"failed parsing port '{text}': invalid syntax") from None
    if not 0 <= value <= 65535:
        raise ValueError(f"failed parsing port '{text}': value out of range")
    return value


def _ports(name: str) -> Callable[[str], None]:
    def check(text: str) -> None:
        if text.strip():
            for item in text.strip().split(","):
                try:
                    _port(item)
                except ValueError as error:
                    raise ValueError(
                        f"{name} invalid: failed parsing port '{item}': {error}"
                    ) from None

    return check


def _cidrs(name: str, allow_star: bool) -> Callable[[str], None]:
    def check(text: str) -> None:
        if allow_star and text == "*":
            return
        if text:
            for cidr in text.split(","):
                try:
                    ipaddress.ip_network(cidr, strict=False)
                    if "/" not in cidr:
                        raise ValueError("no '/'")
                except ValueError:
                    raise ValueError(f"{name} invalid: failed parsing cidr '{cidr}'") from None

    return check


def _interception(text: str) -> None:
    if text not in ("REDIRECT", "TPROXY", "NONE"):
        raise ValueError(f"interceptionMode invalid, use REDIRECT,TPROXY,NONE: {text}")


def _status_port(text: str) -> None:
    try:
        _port(text)
    except ValueError as error:
        raise ValueError(f"excludeInboundPorts invalid: {error}") from None


def _uint32(text: str) -> None:
    if not text.isdigit() or int(text) > 0xFFFFFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')


def _bool(text: str) -> None:
    if text not in (
        "1",
        "t",
        "T",
        "TRUE",
        "true",
        "True",
        "0",
        "f",
        "F",
        "FALSE",
        "false",
        "False",
    ):
        raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


_QUANTITY = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


def _quantity(text: str) -> None:
    if not _QUANTITY.match(text):
        raise ValueError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )


_INTERFACE = re.compile(r"^[^/\s:]{1,15}$")


def _interfaces(text: str) -> None:
    for name in filter(None, (n.strip() for n in text.split(","))):
        if not _INTERFACE.match(name):
            raise ValueError(f"interface name {name!r} is invalid")


def _proxy_config(text: str) -> None:
    try:
        meshconfig.apply_proxy_config(text, meshconfig.default_mesh_config())
    except meshconfig.MeshConfigError as error:
        raise ValueError(f"failed to convert to apply proxy config: {error}") from None


VALIDATION: Mapping[str, Callable[[str], None]] = {
    "sidecar.istio.io/interceptionMode": _interception,
    "status.sidecar.istio.io/port": _status_port,
    "readiness.status.sidecar.istio.io/initialDelaySeconds": _uint32,
    "readiness.status.sidecar.istio.io/periodSeconds": _uint32,
    "readiness.status.sidecar.istio.io/failureThreshold": _uint32,
    "traffic.sidecar.istio.io/includeOutboundIPRanges": _cidrs("includeIPRanges", True),
    "traffic.sidecar.istio.io/excludeOutboundIPRanges": _cidrs("excludeIPRanges", False),
    "traffic.sidecar.istio.io/includeInboundPorts": lambda t: (
        None if t == "*" else _ports("includeInboundPorts")(t)
    ),
    "traffic.sidecar.istio.io/excludeInboundPorts": _ports("excludeInboundPorts"),
    "traffic.sidecar.istio.io/excludeOutboundPorts": _ports("excludeOutboundPorts"),
    "traffic.sidecar.istio.io/excludeInterfaces": _interfaces,
    "traffic.sidecar.istio.io/kubevirtInterfaces": _interfaces,
    "istio.io/reroute-virtual-interfaces": _interfaces,
    "prometheus.istio.io/merge-metrics": _bool,
    "proxy.istio.io/config": _proxy_config,
    "sidecar.istio.io/proxyCPU": _quantity,
    "sidecar.istio.io/proxyMemory": _quantity,
    "sidecar.istio.io/proxyCPULimit": _quantity,
    "sidecar.istio.io/proxyMemoryLimit": _quantity,
}


def validate(annotations: Mapping[str, str]) -> None:
    problems = []
    for name in sorted(annotations):
        check = VALIDATION.get(name)
        if check is None:
            continue
        try:
            check(annotations[name])
        except ValueError as error:
            problems.append(f"invalid value '{annotations[name]}' for annotation '{name}': {error}")
    if problems:
        raise AnnotationError("; ".join(problems))
