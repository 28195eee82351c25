"""A VirtualService's HTTP routes, as Istio validates them (virtualservice.go, validation.go).

Weights are relative, as in today's Istio and Envoy: 4 and 1 split 80/20; only a route with
several destinations whose weights total 0 is refused (it would send nowhere).
"""

from __future__ import annotations

from pkg.config.validation import headers
from pkg.config.validation.common import (
    check_duration,
    check_labels,
    check_port,
    check_regex,
)
from pkg.config.validation.httpactions import (
    check_cors,
    check_direct_response,
    check_fault,
    check_mirror_percent,
    check_redirect,
    check_retries,
    check_rewrite,
)
from pkg.config.validation.names import check_wildcard_domain, is_istio_label
from pkg.config.validation.result import FieldPath, ValidationResult


def check_http_route(route, path: FieldPath, out: ValidationResult, *, delegate: bool) -> None:
    """One entry of `http`; `delegate` when the VirtualService is a delegate (no hosts)."""
    _check_conflicts(route, path, out, delegate=delegate)
    for index, match in enumerate(route.match):
        _check_match(match, path / "match" / index, out)
    if route.HasField("headers"):
        check_header_operations(route.headers, path / "headers", out)
    if route.HasField("cors_policy"):
        check_cors(route.cors_policy, path / "corsPolicy", out)
    if route.HasField("fault"):
        check_fault(route.fault, path / "fault", out)
    if route.HasField("mirror_percent"):
        if route.mirror_percent.value > 100:
            out.error(
                path / "mirrorPercent",
                f"mirror_percent must have a max value of 100 (it has {route.mirror_percent.value})",
            )
        out.warn(
            path / "mirrorPercent",
            'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead',
        )
    if route.HasField("mirror_percentage"):
        check_mirror_percent(route.mirror_percentage.value, path / "mirrorPercentage", out)
    if route.HasField("mirror"):
        check_destination(route.mirror, path / "mirror", out)
    for index, mirror in enumerate(route.mirrors):
        mirror_path = path / "mirrors" / index
        if not mirror.HasField("destination"):
            out.error(mirror_path / "destination", "destination is required for mirrors")
            continue
        check_destination(mirror.destination, mirror_path / "destination", out)
        if mirror.HasField("percentage"):
            check_mirror_percent(mirror.percentage.value, mirror_path / "percentage", out)
    if route.HasField("redirect"):
        check_redirect(route.redirect, path / "redirect", out)
    if route.HasField("direct_response"):
        check_direct_response(route.direct_response, path / "directResponse", out)
    if route.HasField("retries"):
        check_retries(route.retries, path / "retries", out)
    if route.HasField("rewrite"):
        check_rewrite(route.rewrite, path / "rewrite", out)
    _check_authority_rewrite(route, path, out)
    check_destinations(route.route, path / "route", out)
    if route.HasField("timeout"):
        check_duration(route.timeout, path / "timeout", out)


def _check_conflicts(route, path: FieldPath, out: ValidationResult, *, delegate: bool) -> None:
    name = route.name
    if not delegate and route.HasField("delegate"):
        # A root route hands the request to its delegate and may do nothing else.
        if route.HasField("redirect"):
            out.error(path / "redirect", f"root HTTP route {name} must not specify redirect")
        if route.route:
            out.error(path / "route", f"root HTTP route {name} must not specify route")
        return
    if delegate and route.HasField("delegate"):
        out.error(path / "delegate", "delegate HTTP route cannot contain delegate")
    if route.HasField("redirect"):
        for field, json_name, what in (
            ("route", "route", "HTTP route cannot contain both route and redirect"),
            ("fault", "fault", "HTTP route cannot contain both fault and redirect"),
            ("rewrite", "rewrite", "HTTP route rule cannot contain both rewrite and redirect"),
            (
                "direct_response",
                "directResponse",
                "HTTP route rule cannot contain both direct_response and redirect",
            ),
        ):
            if _has(route, field):
                out.error(path / json_name, what)
    elif route.HasField("direct_response"):
        for field, what in (
            ("route", "HTTP route cannot contain both route and direct_response"),
            ("fault", "HTTP route cannot contain both fault and direct_response"),
            ("rewrite", "HTTP route rule cannot contain both rewrite and direct_response"),
        ):
            if _has(route, field):
                out.error(path / field, what)
    elif not route.route:
        out.error(path, "HTTP route, redirect or direct_response is required")
    if route.HasField("mirror") and route.mirrors:
        out.error(path / "mirrors", "HTTP route cannot contain both mirror and mirrors")


def _has(route, field: str) -> bool:
    return len(route.route) > 0 if field == "route" else route.HasField(field)


def check_string_match(match, path: FieldPath, out: ValidationResult, *, uri=False) -> None:
    """A StringMatch; an empty prefix is allowed only for the URI (Envoy's rule)."""
    kind = match.WhichOneof("match_type")
    if kind == "prefix" and not match.prefix and not uri:
        out.error(path, "prefix string match should not be empty")
    elif kind == "regex":
        check_regex(match.regex, path / "regex", out)


def _check_match(match, path: FieldPath, out: ValidationResult) -> None:
    for group, json_name in (("headers", "headers"), ("without_headers", "withoutHeaders")):
        for name, header in sorted(getattr(match, group).items()):
            header_path = path / json_name / name
            problem = headers.check_match_name(name)
            if problem:
                out.error(header_path, problem)
            # In withoutHeaders, regex `*` means "present", not an RE2 pattern.
            if (
                group == "headers"
                or header.WhichOneof("match_type") != "regex"
                or header.regex != "*"
            ):
                check_string_match(header, header_path, out)
    if match.HasField("uri"):
        check_string_match(match.uri, path / "uri", out, uri=True)
    for field in ("scheme", "method", "authority"):
        if match.HasField(field):
            check_string_match(getattr(match, field), path / field, out)
    for name, param in sorted(match.query_params.items()):
        check_string_match(param, path / "queryParams" / name, out)
    if match.port:
        check_port(match.port, path / "port", out)
    check_labels(match.source_labels, path / "sourceLabels", out)
    for index, gateway in enumerate(match.gateways):
        check_gateway_name(gateway, path / "gateways" / index, out)
    if match.source_namespace and not is_istio_label(match.source_namespace):
        out.error(
            path / "sourceNamespace", f"sourceNamespace match {match.source_namespace} is invalid"
        )


def check_gateway_name(name: str, path: FieldPath, out: ValidationResult) -> None:
    """`namespace/name`, `mesh`, or the legacy `name.namespace` (a warning)."""
    namespace, slash, short = name.partition("/")
    if not slash:
        if "." in name:
            parts = name.split(".")
            out.warn(
                path,
                f'using legacy gatewayName format "{name}"; prefer the <namespace>/<name> '
                f'format: "{parts[1]}/{parts[0]}"',
            )
        problem = check_wildcard_domain(name) if "*" not in name else f"{name!r} is not a name"
        if problem:
            out.error(path, problem)
        return
    if not namespace or not short:
        out.error(path, "config namespace and gateway name cannot be empty")
    if not is_istio_label(namespace):
        out.error(path, f'invalid value for namespace: "{namespace}"')
    if not is_istio_label(short):
        out.error(path, f'invalid value for gateway name: "{short}"')


def check_header_operations(ops, path: FieldPath, out: ValidationResult) -> None:
    """Headers a route or destination adds, sets and removes, on requests and responses."""
    for direction in ("request", "response"):
        if not ops.HasField(direction):
            continue
        group, group_path = getattr(ops, direction), path / direction
        name_check = (
            headers.check_request_set_name
            if direction == "request"
            else headers.check_operation_name
        )
        for operation in ("set", "add"):
            for name, value in sorted(getattr(group, operation).items()):
                problem = name_check(name) or headers.check_value(value)
                if problem:
                    out.error(group_path / operation / name, problem)
        for index, name in enumerate(group.remove):
            problem = headers.check_operation_name(name)
            if problem:
                out.error(group_path / "remove" / index, problem)


def _check_authority_rewrite(route, path: FieldPath, out: ValidationResult) -> None:
    """The authority may be rewritten in one place only: rewrite, or one request header."""
    current = route.rewrite.authority if route.HasField("rewrite") else ""
    request = route.headers.request
    for operation in ("set", "add"):
        for name, value in sorted(getattr(request, operation).items()):
            if not headers.is_authority(name):
                continue
            if current:
                out.error(
                    path / "headers" / "request" / operation / name,
                    f'authority header cannot be set multiple times: have "{current}", '
                    f'attempting to set "{value}"',
                )
            current = value


def check_destination(destination, path: FieldPath, out: ValidationResult) -> None:
    if destination.host == "*":
        out.error(path / "host", "invalid destination host *")
    else:
        problem = check_wildcard_domain(destination.host)
        if problem:
            out.error(path / "host", problem)
    if destination.subset:
        check_subset_name(destination.subset, path / "subset", out)
    if destination.HasField("port"):
        check_port(destination.port.number, path / "port" / "number", out)


def check_subset_name(name: str, path: FieldPath, out: ValidationResult) -> None:
    if not name:
        out.error(path, "subset name cannot be empty")
    elif not is_istio_label(name):
        out.error(path, f"subset name is invalid: {name}")


def check_destinations(destinations, path: FieldPath, out: ValidationResult) -> None:
    """HTTP, TCP or TLS route destinations; weights are relative and must not total 0."""
    total = 0
    for index, weighted in enumerate(destinations):
        item_path = path / index
        if not weighted.HasField("destination"):
            out.error(item_path / "destination", "destination is required")
        else:
            check_destination(weighted.destination, item_path / "destination", out)
        if "headers" in weighted.DESCRIPTOR.fields_by_name and weighted.HasField("headers"):
            check_header_operations(weighted.headers, item_path / "headers", out)
        if weighted.weight < 0:
            out.error(item_path / "weight", f"weight {weighted.weight} < 0")
        total += weighted.weight
    if len(destinations) > 1 and total == 0:
        out.error(path, "total destination weight = 0")
