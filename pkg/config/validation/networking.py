"""Semantic checks of networking.istio.io resources, beyond what the schema says.

After Istio's pkg/config/validation: what a proxy would reject, or silently misread, is
refused here, before the resource is stored.
"""

from __future__ import annotations

from pkg.config.validation.common import (
    check_address,
    check_duration,
    check_host,
    check_labels,
    check_percent,
    check_port,
    check_protocol,
    check_regex,
    check_unique,
)
from pkg.config.validation.names import is_dns1123_label, is_header_name
from pkg.config.validation.result import FieldPath, ValidationResult

MESH_GATEWAY = "mesh"
RETRY_ON = {
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
}


def validate_virtual_service(spec, path: FieldPath, out: ValidationResult) -> None:
    delegate = not spec.hosts
    if delegate and spec.gateways:
        out.error(path / "hosts", "a VirtualService needs at least one host")
    for index, host in enumerate(spec.hosts):
        check_host(host, path / "hosts" / index, out)
    for index, gateway in enumerate(spec.gateways):
        _check_gateway_name(gateway, path / "gateways" / index, out)
    if not (spec.http or spec.tcp or spec.tls):
        out.error(path, "a VirtualService needs at least one http, tcp or tls route")
    for index, route in enumerate(spec.http):
        _check_http_route(route, path / "http" / index, out)
    for index, route in enumerate(spec.tcp):
        _check_destinations(route.route, path / "tcp" / index / "route", out)
    for index, route in enumerate(spec.tls):
        route_path = path / "tls" / index
        if not route.match:
            out.error(route_path / "match", "a TLS route needs at least one match")
        for m, match in enumerate(route.match):
            if not match.sni_hosts:
                out.error(route_path / "match" / m / "sniHosts", "at least one SNI host is needed")
            for h, host in enumerate(match.sni_hosts):
                check_host(host, route_path / "match" / m / "sniHosts" / h, out)
        _check_destinations(route.route, route_path / "route", out)


def _check_gateway_name(name: str, path: FieldPath, out: ValidationResult) -> None:
    if name == MESH_GATEWAY:
        return
    namespace, _, short = name.rpartition("/")
    if namespace and not is_dns1123_label(namespace):
        out.error(path, f"{name!r}: {namespace!r} is not a valid namespace")
    if not all(is_dns1123_label(part) for part in short.split(".")):
        out.error(path, f"{name!r} is not a valid gateway name")


def _check_http_route(route, path: FieldPath, out: ValidationResult) -> None:
    actions = [f for f in ("route", "redirect", "direct_response", "delegate") if _has(route, f)]
    if not actions:
        out.error(path, "an HTTP route needs a route, redirect, directResponse or delegate")
    if "route" in actions and "redirect" in actions:
        out.error(path / "redirect", "an HTTP route may not both route and redirect")
    if "redirect" in actions and route.HasField("rewrite"):
        out.error(path / "rewrite", "an HTTP route may not both redirect and rewrite")
    if "direct_response" in actions and len(actions) > 1:
        out.error(path / "directResponse", "directResponse may not be combined with a route")
    for index, match in enumerate(route.match):
        _check_match(match, path / "match" / index, out)
    _check_destinations(route.route, path / "route", out)
    if route.HasField("timeout"):
        check_duration(route.timeout, path / "timeout", out, what="timeout")
    if route.HasField("retries"):
        _check_retries(route.retries, path / "retries", out)
    if route.HasField("fault"):
        _check_fault(route.fault, path / "fault", out)
    if (
        route.HasField("rewrite")
        and route.rewrite.uri
        and route.rewrite.HasField("uri_regex_rewrite")
    ):
        out.error(path / "rewrite", "set either uri or uriRegexRewrite, not both")
    if route.HasField("rewrite") and route.rewrite.HasField("uri_regex_rewrite"):
        check_regex(
            route.rewrite.uri_regex_rewrite.match, path / "rewrite" / "uriRegexRewrite", out
        )
    if route.HasField("redirect") and route.redirect.redirect_code:
        code = route.redirect.redirect_code
        if code not in (301, 302, 303, 307, 308):
            out.error(path / "redirect" / "redirectCode", f"{code} is not a redirect status code")
    if route.HasField("direct_response"):
        status = route.direct_response.status
        if not 200 <= status <= 599:
            out.error(path / "directResponse" / "status", f"status {status} is not in [200, 599]")
    if route.HasField("mirror"):
        check_host(route.mirror.host, path / "mirror" / "host", out)
    if route.HasField("mirror_percentage"):
        check_percent(route.mirror_percentage.value, path / "mirrorPercentage", out)


def _has(route, field: str) -> bool:
    if field == "route":
        return len(route.route) > 0
    return route.HasField(field)


def _check_string_match(match, path: FieldPath, out: ValidationResult) -> None:
    kind = match.WhichOneof("match_type")
    if kind is None:
        out.error(path, "a string match needs one of exact, prefix or regex")
    elif kind == "regex":
        check_regex(match.regex, path / "regex", out)


def _check_match(match, path: FieldPath, out: ValidationResult) -> None:
    for field in ("uri", "scheme", "method", "authority"):
        if match.HasField(field):
            _check_string_match(getattr(match, field), path / field, out)
    for group, json_name in (("headers", "headers"), ("without_headers", "withoutHeaders")):
        for name, header_match in sorted(getattr(match, group).items()):
            header_path = path / json_name / name
            if not is_header_name(name):
                out.error(header_path, f"header name {name!r} must be lowercase token characters")
            if header_match.WhichOneof("match_type") == "regex":
                check_regex(header_match.regex, header_path / "regex", out)
    for name, param_match in sorted(match.query_params.items()):
        if param_match.WhichOneof("match_type") == "regex":
            check_regex(param_match.regex, path / "queryParams" / name / "regex", out)
    if match.port:
        check_port(match.port, path / "port", out)
    check_labels(match.source_labels, path / "sourceLabels", out)
    for index, gateway in enumerate(match.gateways):
        _check_gateway_name(gateway, path / "gateways" / index, out)


def _check_destinations(routes, path: FieldPath, out: ValidationResult) -> None:
    for index, route in enumerate(routes):
        dest_path = path / index / "destination"
        if not route.HasField("destination") or not route.destination.host:
            out.error(dest_path / "host", "a destination needs a host")
            continue
        check_host(route.destination.host, dest_path / "host", out)
        if route.destination.subset and not is_dns1123_label(route.destination.subset):
            out.error(dest_path / "subset", f"{route.destination.subset!r} is not a valid name")
        if route.destination.HasField("port"):
            check_port(route.destination.port.number, dest_path / "port" / "number", out)
        if route.weight < 0:
            out.error(path / index / "weight", f"weight {route.weight} is negative")
    if len(routes) > 1:
        total = sum(route.weight for route in routes)
        if total != 100:
            out.error(path, f"the weights of the destinations must total 100, got {total}")


def _check_retries(retries, path: FieldPath, out: ValidationResult) -> None:
    if retries.attempts < 0:
        out.error(path / "attempts", "attempts may not be negative")
    if retries.HasField("per_try_timeout"):
        check_duration(retries.per_try_timeout, path / "perTryTimeout", out, what="perTryTimeout")
    for condition in filter(None, (c.strip() for c in retries.retry_on.split(","))):
        if condition not in RETRY_ON and not condition.isdigit():
            out.error(path / "retryOn", f"unknown retry condition {condition!r}")


def _check_fault(fault, path: FieldPath, out: ValidationResult) -> None:
    if not fault.HasField("delay") and not fault.HasField("abort"):
        out.error(path, "a fault needs a delay or an abort")
    if fault.HasField("delay"):
        delay, delay_path = fault.delay, path / "delay"
        kind = delay.WhichOneof("http_delay_type")
        if kind is None:
            out.error(delay_path, "a delay needs fixedDelay")
        elif kind == "fixed_delay":
            check_duration(delay.fixed_delay, delay_path / "fixedDelay", out, what="fixedDelay")
        elif kind == "exponential_delay":
            out.error(delay_path / "exponentialDelay", "exponentialDelay is not supported")
        _check_fault_percent(delay, delay_path, out)
    if fault.HasField("abort"):
        abort, abort_path = fault.abort, path / "abort"
        kind = abort.WhichOneof("error_type")
        if kind is None:
            out.error(abort_path, "an abort needs httpStatus or grpcStatus")
        elif kind == "http_status" and not 200 <= abort.http_status <= 599:
            out.error(abort_path / "httpStatus", f"{abort.http_status} is not in [200, 599]")
        elif kind == "http2_error":
            out.error(abort_path / "http2Error", "http2Error is not supported")
        _check_fault_percent(abort, abort_path, out)


def _check_fault_percent(fault, path: FieldPath, out: ValidationResult) -> None:
    if fault.HasField("percentage"):
        check_percent(fault.percentage.value, path / "percentage" / "value", out)
    # Delay still has the deprecated integer `percent`; Abort reserved it.
    if "percent" in fault.DESCRIPTOR.fields_by_name and fault.percent:
        check_percent(fault.percent, path / "percent", out)


def validate_destination_rule(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.host:
        out.error(path / "host", "a DestinationRule needs a host")
    else:
        check_host(spec.host, path / "host", out)
    if spec.HasField("traffic_policy"):
        _check_traffic_policy(spec.traffic_policy, path / "trafficPolicy", out)
    names = []
    for index, subset in enumerate(spec.subsets):
        subset_path = path / "subsets" / index
        names.append(subset.name)
        if not subset.name:
            out.error(subset_path / "name", "a subset needs a name")
        elif not is_dns1123_label(subset.name):
            out.error(subset_path / "name", f"{subset.name!r} is not a valid subset name")
        check_labels(subset.labels, subset_path / "labels", out)
        if subset.HasField("traffic_policy"):
            _check_traffic_policy(subset.traffic_policy, subset_path / "trafficPolicy", out)
    check_unique(names, path / "subsets", out, what="subset name")


def _check_traffic_policy(policy, path: FieldPath, out: ValidationResult, *, top=True) -> None:
    if policy.HasField("connection_pool"):
        pool = policy.connection_pool
        if pool.HasField("tcp") and pool.tcp.HasField("connect_timeout"):
            check_duration(
                pool.tcp.connect_timeout,
                path / "connectionPool" / "tcp" / "connectTimeout",
                out,
                what="connectTimeout",
            )
        if pool.HasField("http") and pool.http.HasField("idle_timeout"):
            check_duration(
                pool.http.idle_timeout,
                path / "connectionPool" / "http" / "idleTimeout",
                out,
                what="idleTimeout",
            )
    if policy.HasField("outlier_detection"):
        outlier, outlier_path = policy.outlier_detection, path / "outlierDetection"
        if outlier.HasField("interval"):
            check_duration(outlier.interval, outlier_path / "interval", out, what="interval")
        if outlier.HasField("base_ejection_time"):
            check_duration(
                outlier.base_ejection_time,
                outlier_path / "baseEjectionTime",
                out,
                what="baseEjectionTime",
            )
        check_percent(outlier.max_ejection_percent, outlier_path / "maxEjectionPercent", out)
        check_percent(outlier.min_health_percent, outlier_path / "minHealthPercent", out)
    if policy.HasField("load_balancer"):
        lb = policy.load_balancer
        if lb.HasField("consistent_hash"):
            hash_path = path / "loadBalancer" / "consistentHash"
            if lb.consistent_hash.WhichOneof("hash_key") is None:
                out.error(hash_path, "a consistent hash needs a key (httpHeaderName, ...)")
    if policy.HasField("tls"):
        _check_client_tls(policy.tls, path / "tls", out)
    if top:
        ports = []
        for index, setting in enumerate(policy.port_level_settings):
            setting_path = path / "portLevelSettings" / index
            if not setting.HasField("port"):
                out.error(setting_path / "port", "a port-level setting needs a port")
                continue
            check_port(setting.port.number, setting_path / "port" / "number", out)
            ports.append(str(setting.port.number))
            _check_traffic_policy(setting, setting_path, out, top=False)
        check_unique(ports, path / "portLevelSettings", out, what="port")


def _check_client_tls(tls, path: FieldPath, out: ValidationResult) -> None:
    mode = tls.DESCRIPTOR.fields_by_name["mode"].enum_type.values_by_number[tls.mode].name
    if mode == "MUTUAL" and not tls.credential_name:
        if not tls.client_certificate:
            out.error(path / "clientCertificate", "MUTUAL mode needs a client certificate")
        if not tls.private_key:
            out.error(path / "privateKey", "MUTUAL mode needs a private key")


def validate_gateway(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.servers:
        out.error(path / "servers", "a Gateway needs at least one server")
    check_labels(spec.selector, path / "selector", out)
    port_names = []
    for index, server in enumerate(spec.servers):
        server_path = path / "servers" / index
        if not server.HasField("port"):
            out.error(server_path / "port", "a server needs a port")
            continue
        port = server.port
        check_port(port.number, server_path / "port" / "number", out)
        check_protocol(port.protocol, server_path / "port" / "protocol", out)
        if port.name:
            port_names.append(port.name)
        if not server.hosts:
            out.error(server_path / "hosts", "a server needs at least one host")
        for h, host in enumerate(server.hosts):
            namespace, _, name = host.rpartition("/")
            if namespace and namespace not in (".", "*") and not is_dns1123_label(namespace):
                out.error(server_path / "hosts" / h, f"{namespace!r} is not a valid namespace")
            check_host(name, server_path / "hosts" / h, out)
        if port.protocol.upper() == "HTTPS" and not server.HasField("tls"):
            out.error(server_path / "tls", "an HTTPS server needs tls settings")
        if server.HasField("tls"):
            _check_server_tls(server.tls, server_path / "tls", out)
    check_unique(port_names, path / "servers", out, what="port name")


def _check_server_tls(tls, path: FieldPath, out: ValidationResult) -> None:
    if tls.https_redirect:
        return
    mode = tls.DESCRIPTOR.fields_by_name["mode"].enum_type.values_by_number[tls.mode].name
    if mode in ("SIMPLE", "MUTUAL") and not (tls.credential_name or tls.credential_names):
        if not tls.server_certificate:
            out.error(path / "serverCertificate", f"{mode} mode needs a server certificate")
        if not tls.private_key:
            out.error(path / "privateKey", f"{mode} mode needs a private key")
        if mode == "MUTUAL" and not tls.ca_certificates:
            out.error(path / "caCertificates", "MUTUAL mode needs CA certificates")


def validate_service_entry(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.hosts:
        out.error(path / "hosts", "a ServiceEntry needs at least one host")
    for index, host in enumerate(spec.hosts):
        check_host(host, path / "hosts" / index, out)
    resolution = spec.DESCRIPTOR.fields_by_name["resolution"].enum_type
    resolution_name = resolution.values_by_number[spec.resolution].name
    if not spec.ports:
        out.error(path / "ports", "a ServiceEntry needs at least one port")
    port_names, port_numbers = [], []
    for index, port in enumerate(spec.ports):
        port_path = path / "ports" / index
        check_port(port.number, port_path / "number", out)
        check_protocol(port.protocol, port_path / "protocol", out)
        if not port.name:
            out.error(port_path / "name", "a service port needs a name")
        port_names.append(port.name)
        port_numbers.append(str(port.number))
    check_unique(port_names, path / "ports", out, what="port name")
    check_unique(port_numbers, path / "ports", out, what="port number")
    if (
        resolution_name == "STATIC"
        and not spec.endpoints
        and not spec.HasField("workload_selector")
    ):
        out.error(path / "endpoints", "STATIC resolution needs endpoints or a workloadSelector")
    for index, endpoint in enumerate(spec.endpoints):
        endpoint_path = path / "endpoints" / index
        _check_workload(endpoint, endpoint_path, out, port_names=set(port_names))


def validate_workload_entry(spec, path: FieldPath, out: ValidationResult) -> None:
    _check_workload(spec, path, out, port_names=None)


def _check_workload(entry, path: FieldPath, out: ValidationResult, *, port_names) -> None:
    if not entry.address:
        out.error(path / "address", "a workload needs an address")
    else:
        check_address(entry.address, path / "address", out)
    check_labels(entry.labels, path / "labels", out)
    for name, number in sorted(entry.ports.items()):
        check_port(number, path / "ports" / name, out)
        if port_names is not None and name not in port_names:
            out.error(path / "ports" / name, f"no service port is named {name!r}")
    if entry.service_account and not is_dns1123_label(entry.service_account):
        out.error(path / "serviceAccount", f"{entry.service_account!r} is not a valid name")


def validate_sidecar(spec, path: FieldPath, out: ValidationResult) -> None:
    if spec.HasField("workload_selector"):
        check_labels(spec.workload_selector.labels, path / "workloadSelector" / "labels", out)
    ports = []
    for index, listener in enumerate(spec.ingress):
        listener_path = path / "ingress" / index
        if not listener.HasField("port"):
            out.error(listener_path / "port", "an ingress listener needs a port")
            continue
        check_port(listener.port.number, listener_path / "port" / "number", out)
        check_protocol(listener.port.protocol, listener_path / "port" / "protocol", out)
        ports.append(str(listener.port.number))
    check_unique(ports, path / "ingress", out, what="ingress port")
    for index, listener in enumerate(spec.egress):
        listener_path = path / "egress" / index
        if not listener.hosts:
            out.error(listener_path / "hosts", "an egress listener needs at least one host")
        for h, host in enumerate(listener.hosts):
            namespace, slash, name = host.partition("/")
            if not slash:
                out.error(listener_path / "hosts" / h, f"{host!r} must be written namespace/host")
                continue
            if namespace not in ("*", ".", "~") and not is_dns1123_label(namespace):
                out.error(listener_path / "hosts" / h, f"{namespace!r} is not a valid namespace")
            check_host(name, listener_path / "hosts" / h, out)
        if listener.HasField("port"):
            check_port(listener.port.number, listener_path / "port" / "number", out)
