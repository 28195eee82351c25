"""VirtualService: hosts, gateways, and its TLS and TCP routes (HTTP routes: httproute.py).

After Istio's ValidateVirtualService. A VirtualService without hosts is a delegate, which only
HTTP routes may use; one bound only to gateways follows the gateways' host rules; one bound to
the mesh (no gateways, or `mesh` among them) may not claim every host with `*`.
"""

from __future__ import annotations

import json

from google.protobuf import json_format

from pkg.config.validation import headers
from pkg.config.validation.common import check_export_to, check_labels, check_port
from pkg.config.validation.httproute import (
    check_destinations,
    check_gateway_name,
    check_http_route,
)
from pkg.config.validation.names import (
    check_ip_subnet,
    check_wildcard_domain,
    host_matches,
    host_subset_of,
    is_ip,
)
from pkg.config.validation.result import FieldPath, ValidationResult

MESH_GATEWAY = "mesh"


def validate_virtual_service(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.hosts:  # a delegate: only HTTP routes, reached from a root's `delegate`
        if spec.gateways:
            out.error(path / "gateways", "delegate virtual service must have no gateways specified")
        if spec.tls:
            out.error(path / "tls", "delegate virtual service must have no tls route specified")
        if spec.tcp:
            out.error(path / "tcp", "delegate virtual service must have no tcp route specified")
    for index, gateway in enumerate(spec.gateways):
        check_gateway_name(gateway, path / "gateways" / index, out)
    to_gateways = bool(spec.gateways) and MESH_GATEWAY not in spec.gateways
    if not to_gateways:
        _check_no_claim_routing(spec, path, out)
    _check_hosts(spec, path, out, to_gateways=to_gateways)
    if not (spec.http or spec.tcp or spec.tls):
        out.error(path, "http, tcp or tls must be provided in virtual service")
    for index, route in enumerate(spec.http):
        check_http_route(route, path / "http" / index, out, delegate=not spec.hosts)
    for index, route in enumerate(spec.tls):
        _check_tls_route(spec, route, path / "tls" / index, out, to_gateways=to_gateways)
    for index, route in enumerate(spec.tcp):
        route_path = path / "tcp" / index
        for m, match in enumerate(route.match):
            _check_l4_match(match, route_path / "match" / m, out)
        if not route.route:
            out.error(route_path / "route", "TCP route is required")
        check_destinations(route.route, route_path / "route", out)
    check_export_to(spec.export_to, path / "exportTo", out)
    for kind in ("http", "tcp", "tls"):
        _warn_unreachable(getattr(spec, kind), path / kind, out)


def _claim_routing(spec) -> list[tuple[int, str]]:
    return [
        (index, name)
        for index, route in enumerate(spec.http)
        for match in route.match
        for name in sorted([*match.headers, *match.without_headers])
        if headers.jwt_claims(name) is not None
    ]


def _check_no_claim_routing(spec, path: FieldPath, out: ValidationResult) -> None:
    gateways = "[" + " ".join(spec.gateways) + "]"
    for index, name in _claim_routing(spec):
        out.error(
            path / "http" / index,
            f"JWT claim based routing (key: {name}) is only supported for gateway, found no "
            f"gateways: {gateways}",
        )


def _check_hosts(spec, path: FieldPath, out: ValidationResult, *, to_gateways: bool) -> None:
    valid = True
    for index, host in enumerate(spec.hosts):
        host_path = path / "hosts" / index
        problem = _gateway_host_problem(spec, host) if to_gateways else check_wildcard_domain(host)
        if problem:
            if not is_ip(host):
                out.error(host_path, problem)
                valid = False
        elif not to_gateways and host == "*":
            out.error(
                host_path,
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
            valid = False
    if not valid:
        return
    for i, first in enumerate(spec.hosts):
        for second in spec.hosts[i + 1 :]:
            if host_matches(first, second):
                out.error(path / "hosts", f"duplicate hosts in virtual service: {first} & {second}")


def _gateway_host_problem(spec, host: str) -> str | None:
    """At a gateway, a TLS route may name Istio's own SNI form `outbound_.80_._.host`."""
    sni = any(match.sni_hosts for route in spec.tls for match in route.match)
    if sni and host.startswith("outbound_"):
        parts = host.split("_", 3)
        if len(parts) == 4 and parts[1].startswith(".") and parts[1][1:-1].isdigit():
            return None
        return f"domain name {host!r} invalid (should follow outbound_.<port>_.<subset>_.<host>)"
    return check_wildcard_domain(host)


def _check_tls_route(spec, route, path: FieldPath, out: ValidationResult, *, to_gateways) -> None:
    if not route.match:
        out.error(path / "match", "TLS route must have at least one match condition")
    for m, match in enumerate(route.match):
        match_path = path / "match" / m
        if not match.sni_hosts:
            out.error(match_path / "sniHosts", "TLS match must have at least one SNI host")
        for h, sni in enumerate(match.sni_hosts):
            _check_sni_host(spec, sni, match_path / "sniHosts" / h, out, to_gateways=to_gateways)
        _check_l4_match(match, match_path, out)
    if not route.route:
        out.error(path / "route", "TLS route is required")
    check_destinations(route.route, path / "route", out)


def _check_sni_host(spec, sni: str, path: FieldPath, out: ValidationResult, *, to_gateways) -> None:
    problem = _gateway_host_problem(spec, sni) if to_gateways else check_wildcard_domain(sni)
    if problem:
        if is_ip(sni):
            out.warn(
                path,
                f'using an IP address ("{sni}") goes against SNI spec and most clients do not '
                "support this",
            )
        else:
            out.error(path, problem)
        return
    if not any(host_subset_of(sni, host) for host in spec.hosts):
        out.error(
            path,
            f'SNI host "{sni}" is not a compatible subset of any of the virtual service hosts: '
            f"[{', '.join(spec.hosts)}]",
        )


def _check_l4_match(match, path: FieldPath, out: ValidationResult) -> None:
    for index, subnet in enumerate(match.destination_subnets):
        problem = check_ip_subnet(subnet)
        if problem:
            out.error(path / "destinationSubnets" / index, problem)
    if match.port:
        check_port(match.port, path / "port", out)
    check_labels(match.source_labels, path / "sourceLabels", out)
    for index, gateway in enumerate(match.gateways):
        check_gateway_name(gateway, path / "gateways" / index, out)


def _warn_unreachable(routes, path: FieldPath, out: ValidationResult) -> None:
    """Istio's analyzeUnreachable*Rules: rules after a catch-all, matches seen before."""
    seen: dict[str, int] = {}
    catch_all: int | None = None
    for index, route in enumerate(routes):
        name = f'"{route.name}"' if getattr(route, "name", "") else f"#{index}"
        if not route.match:
            if catch_all is not None:
                out.warn(
                    path / index,
                    f"virtualService rule {name} not used (only the last rule can have no matches)",
                )
            catch_all = index
            continue
        duplicates = 0
        for m, match in enumerate(route.match):
            if catch_all is not None:
                out.warn(
                    path / index,
                    f"virtualService rule {name} not used (route without matches defined before)",
                )
                continue
            key = _match_key(match)
            if key in seen:
                match_name = f'"{match.name}"' if getattr(match, "name", "") else f"#{m}"
                first = seen[key]
                first_name = (
                    f'"{routes[first].name}"' if getattr(routes[first], "name", "") else f"#{first}"
                )
                out.warn(
                    path / index,
                    f"virtualService rule {name} match {match_name} is not used "
                    f"(duplicate/overlapping match in rule {first_name})",
                )
                duplicates += 1
            else:
                seen[key] = index
        if duplicates and duplicates == len(route.match):
            out.warn(
                path / index,
                f"virtualService rule {name} not used (all matches used by prior rules)",
            )


def _match_key(match) -> str:
    data = json_format.MessageToDict(match)
    data.pop("name", None)
    return json.dumps(data, sort_keys=True)
