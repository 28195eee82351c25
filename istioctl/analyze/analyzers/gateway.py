"""Gateway analyzers, after Istio's pkg/config/analysis/analyzers/gateway."""

from __future__ import annotations

from istioctl.analyze.analyzers.base import Analyzer, Context
from istioctl.analyze.model import Entry, selector_string, selects

# The ports of Istio's own istio-ingressgateway Service, assumed for a Gateway that selects
# the system ingress gateway when the input does not hold it (files analyzed alone).
DEFAULT_INGRESS_PORTS = frozenset({80, 443, 31400, 15443})
SYSTEM_INGRESS = {"istio": "ingressgateway"}


def listen_port(port: int) -> int:
    # The local platform's gateways bind ports below 1024 at +8000, as Istio's non-root
    # gateway pods bind 80 at 8080 (Pilot's listeners do the same): a workload declaring
    # 8080 serves Gateway port 80.
    return port + 8000 if port < 1024 else port


def check_ports(ctx: Context) -> None:
    for entry in ctx.snapshot.of("Gateway"):
        _check_gateway(ctx, entry)


def _check_gateway(ctx: Context, entry: Entry) -> None:
    selector = dict(entry.spec.selector)
    workloads = [w for w in ctx.snapshot.workloads if selects(selector, w.labels)]
    if not workloads:
        if selector == SYSTEM_INGRESS:
            exposed = set(DEFAULT_INGRESS_PORTS)
        else:
            if ctx.workloads_known:
                ctx.report(
                    entry,
                    "ReferencedResourceNotFound",
                    "selector",
                    selector_string(selector),
                    path="spec.selector",
                )
            return
    else:
        # What the workloads are reached on: their services' ports, and the ports a local
        # platform pod declares. A gateway pod with neither takes whatever the Gateway says.
        exposed = {
            p.number for w in workloads for s in ctx.snapshot.services_selecting(w) for p in s.ports
        }
        exposed |= {port for w in workloads for port in w.ports}
        if not exposed:
            return
    for i, server in enumerate(entry.spec.servers):
        number = server.port.number
        if number not in exposed and listen_port(number) not in exposed:
            ctx.report(
                entry,
                "GatewayPortNotOnWorkload",
                selector_string(selector),
                number,
                path=f"spec.servers[{i}].port",
            )


def check_secrets(ctx: Context) -> None:
    """Every credentialName names a Secret in the gateway workload's namespace (Istio's
    gateway.SecretAnalyzer: IST0101, "Referenced credentialName not found")."""
    for entry in ctx.snapshot.of("Gateway"):
        selector = dict(entry.spec.selector)
        namespaces = sorted(
            {w.namespace for w in ctx.snapshot.workloads if selects(selector, w.labels)}
        )
        if not namespaces and selector == SYSTEM_INGRESS:
            namespaces = [ctx.snapshot.istio_namespace]
        if not namespaces:
            continue  # no gateway workload: the selector is what is reported (check_ports)
        for i, server in enumerate(entry.spec.servers):
            name = server.tls.credential_name if server.HasField("tls") else ""
            if not name:
                continue
            if not any(ctx.snapshot.exists("Secret", ns, name) for ns in namespaces):
                ctx.report(
                    entry,
                    "ReferencedResourceNotFound",
                    "credentialName",
                    name,
                    path=f"spec.servers[{i}].tls.credentialName",
                )


def check_conflicts(ctx: Context) -> None:
    """Two Gateways with the same selector serving a host on the same port."""
    gateways = ctx.snapshot.of("Gateway")
    for entry in gateways:
        for other in gateways:
            if other is entry or dict(other.spec.selector) != dict(entry.spec.selector):
                continue
            for server in entry.spec.servers:
                for theirs in other.spec.servers:
                    if server.port.number != theirs.port.number:
                        continue
                    shared = sorted(set(server.hosts) & set(theirs.hosts))
                    if shared:
                        ctx.report(
                            entry,
                            "ConflictingGateways",
                            other.origin.full_name(),
                            selector_string(dict(entry.spec.selector)),
                            str(server.port.number),
                            shared,
                            path="spec.servers",
                        )


ANALYZERS = (
    Analyzer(
        "gateway.ConflictingGatewayAnalyzer",
        "Checks that gateways with the same selector do not serve the same host on the same port",
        check_conflicts,
    ),
    Analyzer(
        "gateway.SecretAnalyzer",
        "Checks a gateway's referenced secrets for correctness",
        check_secrets,
    ),
    Analyzer(
        "gateway.IngressGatewayPortAnalyzer",
        "Checks a gateway's ports against the ports its workloads are reached on",
        check_ports,
    ),
)
