"""VirtualService analyzers, after Istio's pkg/config/analysis/analyzers/virtualservice."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from istioctl.analyze.analyzers.base import Analyzer, Context
from istioctl.analyze.model import Entry, fqdn

MESH = "mesh"


@dataclasses.dataclass(frozen=True)
class Destination:
    destination: Any  # the Destination message
    path: str  # of the destination, e.g. spec.http[0].route[1].destination
    mirror: bool = False


def destinations(entry: Entry) -> Iterator[Destination]:
    vs = entry.spec
    for kind, routes in (("http", vs.http), ("tcp", vs.tcp), ("tls", vs.tls)):
        for i, route in enumerate(routes):
            for j, target in enumerate(route.route):
                if target.HasField("destination"):
                    yield Destination(
                        target.destination, f"spec.{kind}[{i}].route[{j}].destination"
                    )
    for i, route in enumerate(vs.http):
        if route.HasField("mirror"):
            yield Destination(route.mirror, f"spec.http[{i}].mirror", mirror=True)
        for j, mirror in enumerate(route.mirrors):
            if mirror.HasField("destination"):
                yield Destination(
                    mirror.destination, f"spec.http[{i}].mirrors[{j}].destination", mirror=True
                )


def check_destination_hosts(ctx: Context) -> None:
    for entry in ctx.snapshot.of("VirtualService"):
        for d in destinations(entry):
            host = d.destination.host
            service = ctx.snapshot.find_service(host, entry.namespace)
            if service is None:
                kind = "mirror host" if d.mirror else "host"
                ctx.report(entry, "ReferencedResourceNotFound", kind, host, path=f"{d.path}.host")
                continue
            if not d.destination.HasField("port"):
                if len(service.ports) > 1:
                    ports = [p.number for p in service.ports]
                    ctx.report(
                        entry,
                        "VirtualServiceDestinationPortSelectorRequired",
                        host,
                        ports,
                        path=f"{d.path}.host",
                    )
                continue
            number = d.destination.port.number
            if all(p.number != number for p in service.ports):
                ctx.report(
                    entry,
                    "ReferencedResourceNotFound",
                    "host:port",
                    f"{host}:{number}",
                    path=f"{d.path}.port",
                )


def check_destination_subsets(ctx: Context) -> None:
    subsets = {
        (fqdn(dr.spec.host, dr.namespace), subset.name)
        for dr in ctx.snapshot.of("DestinationRule")
        for subset in dr.spec.subsets
    }
    for entry in ctx.snapshot.of("VirtualService"):
        for d in destinations(entry):
            subset = d.destination.subset
            if subset and (fqdn(d.destination.host, entry.namespace), subset) not in subsets:
                ctx.report(
                    entry,
                    "ReferencedResourceNotFound",
                    "host+subset in destinationrule",
                    f"{d.destination.host}+{subset}",
                    path=f"{d.path}.subset",
                )


def gateway_key(name: str, namespace: str) -> tuple[str, str]:
    """A VirtualService's gateway reference: `<namespace>/<name>`, or `<name>` in its own."""
    ns, slash, short = name.partition("/")
    return (ns, short) if slash else (namespace, name)


def check_gateways(ctx: Context) -> None:
    for entry in ctx.snapshot.of("VirtualService"):
        for i, name in enumerate(entry.spec.gateways):
            if name == MESH:
                continue
            ns, short = gateway_key(name, entry.namespace)
            if not ctx.snapshot.exists("Gateway", ns, short):
                ctx.report(
                    entry, "ReferencedResourceNotFound", "gateway", name, path=f"spec.gateways[{i}]"
                )


def check_hosts_in_gateways(ctx: Context) -> None:
    """Each host of a VirtualService bound to a gateway must be among the gateway's hosts."""
    for entry in ctx.snapshot.of("VirtualService"):
        for name in entry.spec.gateways:
            if name == MESH:
                continue
            ns, short = gateway_key(name, entry.namespace)
            gateway = next(
                (g for g in ctx.snapshot.of("Gateway") if (g.namespace, g.name) == (ns, short)),
                None,
            )
            if gateway is None:
                continue  # reported by check_gateways
            offered = [
                (host.partition("/")[2] if "/" in host else host)
                for server in gateway.spec.servers
                for host in server.hosts
            ]
            missing = [h for h in entry.spec.hosts if not any(_host_matches(h, g) for g in offered)]
            if missing:
                ctx.report(
                    entry,
                    "VirtualServiceHostNotFoundInGateway",
                    missing,
                    entry.origin.full_name(),
                    gateway.origin.full_name(),
                    path="spec.hosts",
                )


def _host_matches(host: str, gateway_host: str) -> bool:
    """Whether a gateway host admits a VirtualService host (either may be a wildcard)."""
    if gateway_host == "*" or host == gateway_host:
        return True
    if gateway_host.startswith("*"):
        return host.endswith(gateway_host[1:]) or host == "*"
    if host.startswith("*"):
        return gateway_host.endswith(host[1:])
    return False


def check_mesh_host_conflicts(ctx: Context) -> None:
    """Two VirtualServices of the mesh gateway for one host: which applies is undefined."""
    by_host: dict[str, list[Entry]] = {}
    for entry in ctx.snapshot.of("VirtualService"):
        vs = entry.spec
        if vs.gateways and MESH not in vs.gateways:
            continue
        scope = "*" if not vs.export_to or "*" in vs.export_to else entry.namespace
        for host in vs.hosts:
            by_host.setdefault(f"{scope}/{fqdn(host, entry.namespace)}", []).append(entry)
    reported: set[str] = set()
    for scoped, entries in sorted(by_host.items()):
        scope, _, host = scoped.partition("/")
        if scope != "*":  # a namespace's own rule also meets the rules exported everywhere
            entries = entries + by_host.get(f"*/{host}", [])
        unique = {e.origin.full_name(): e for e in entries}
        if len(unique) < 2:
            continue
        names = ",".join(sorted(unique))
        for name, entry in sorted(unique.items()):
            if name in reported:
                continue
            reported.add(name)
            ctx.report(
                entry,
                "ConflictingMeshGatewayVirtualServiceHosts",
                names,
                scoped,
                path="metadata.name",
            )


def check_regexes(ctx: Context) -> None:
    """Envoy takes RE2 regular expressions; one that RE2 refuses fails the whole push."""
    import re2

    quiet = re2.Options()
    quiet.log_errors = False  # RE2 would log each refusal to stderr itself

    def check(entry: Entry, where: str, match: Any, path: str) -> None:
        if match.WhichOneof("match_type") != "regex":
            return
        try:
            re2.compile(match.regex, quiet)
        except re2.error as error:
            why = error.args[0] if error.args else error
            why = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
            ctx.report(entry, "InvalidRegexp", where, match.regex, why, path=f"{path}.regex")

    for entry in ctx.snapshot.of("VirtualService"):
        for i, route in enumerate(entry.spec.http):
            for j, match in enumerate(route.match):
                base = f"spec.http[{i}].match[{j}]"
                for field, json_name in (("uri", "uri"), ("scheme", "scheme"), ("method", "method"), ("authority", "authority")):  # fmt: skip
                    if match.HasField(field):
                        check(entry, json_name, getattr(match, field), f"{base}.{json_name}")
                for field, json_name in (("headers", "headers"), ("query_params", "queryParams"), ("without_headers", "withoutHeaders")):  # fmt: skip
                    for key, value in getattr(match, field).items():
                        check(entry, json_name, value, f"{base}.{json_name}.{key}")
            for k, origin in enumerate(route.cors_policy.allow_origins):
                path = f"spec.http[{i}].corsPolicy.allowOrigins[{k}]"
                check(entry, "corsPolicy.allowOrigins", origin, path)


ANALYZERS = (
    Analyzer(
        "virtualservice.ConflictingMeshGatewayHostsAnalyzer",
        "Checks if multiple virtual services associated with the mesh gateway have conflicting hosts",
        check_mesh_host_conflicts,
    ),
    Analyzer(
        "virtualservice.DestinationHostAnalyzer",
        "Checks the destination hosts associated with each virtual service",
        check_destination_hosts,
    ),
    Analyzer(
        "virtualservice.DestinationRuleAnalyzer",
        "Checks the destination rules associated with each virtual service",
        check_destination_subsets,
    ),
    Analyzer(
        "virtualservice.GatewayAnalyzer",
        "Checks the gateways associated with each virtual service",
        check_gateways,
    ),
    Analyzer(
        "virtualservice.HostInGatewayAnalyzer",
        "Checks that each host of a virtual service bound to a gateway is one of the gateway's hosts",
        check_hosts_in_gateways,
    ),
    Analyzer("virtualservice.RegexAnalyzer", "Checks regex syntax", check_regexes),
)
