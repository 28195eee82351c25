"""service.PortNameAnalyzer: Kubernetes Service ports named as Istio's protocol selection
expects (`<protocol>[-<suffix>]`, or an appProtocol)."""

from __future__ import annotations

from istioctl.analyze.analyzers.base import Analyzer, Context
from istioctl.analyze.analyzers.injection import SYSTEM_NAMESPACES

# The protocols a port name (or appProtocol) may select, as Istio's protocol.Parse reads them.
PROTOCOLS = {
    "grpc", "grpc-web", "http", "http2", "https", "mongo", "mysql", "redis", "tcp", "tls",
    "udp", "thrift",
}  # fmt: skip


def follows_convention(name: str, app_protocol: str) -> bool:
    if app_protocol and app_protocol.lower() in PROTOCOLS:
        return True
    lowered = name.lower()
    if lowered in PROTOCOLS:
        return True
    return any(lowered.startswith(f"{p}-") for p in PROTOCOLS)


def check(ctx: Context) -> None:
    system = SYSTEM_NAMESPACES | {ctx.snapshot.istio_namespace}
    for entry in ctx.snapshot.of("Service"):
        if entry.namespace in system:
            continue
        spec = entry.spec.get("spec") or {}
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict):
                continue
            if str(port.get("protocol", "TCP")).upper() == "UDP":
                continue  # Istio proxies no UDP; its name selects nothing
            name = str(port.get("name") or "")
            if follows_convention(name, str(port.get("appProtocol") or "")):
                continue
            number = port.get("port")
            target = port.get("targetPort", number)
            ctx.report(
                entry,
                "PortNameIsNotUnderNamingConvention",
                name,
                number if isinstance(number, int) else 0,
                str(target),
                path=f"spec.ports[{i}]",
            )


ANALYZERS = (
    Analyzer(
        "service.PortNameAnalyzer", "Checks the port names associated with each service", check
    ),
)
