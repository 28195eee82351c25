"""Sidecar: the listeners of the workloads it selects (after Istio's ValidateSidecar).

An egress listener without a port is the catch-all for everything else: there may be one,
and it must come last. A Sidecar that says nothing at all is refused.
"""

from __future__ import annotations

from pkg.config.validation.common import (
    HTTP_PROTOCOLS,
    TLS_PROTOCOLS,
    UNIX_PREFIX,
    check_ip,
    check_labels,
    check_port,
    check_protocol,
    check_selector_labels,
    check_unix_address,
    protocol_of,
)
from pkg.config.validation.destinationrule import check_connection_pool
from pkg.config.validation.gateway import check_namespaced_host, check_server_tls
from pkg.config.validation.httproute import check_destination
from pkg.config.validation.names import check_fqdn, is_istio_label
from pkg.config.validation.result import FieldPath, ValidationResult

_LOOPBACKS = ("127.0.0.1", "0.0.0.0", "::1", "::")


def validate_sidecar(spec, path: FieldPath, out: ValidationResult) -> None:
    if spec.HasField("workload_selector"):
        labels = spec.workload_selector.labels
        selector_path = path / "workloadSelector" / "labels"
        check_labels(labels, selector_path, out)
        check_selector_labels(labels, selector_path, out)
    if not (
        spec.egress
        or spec.ingress
        or spec.HasField("outbound_traffic_policy")
        or spec.HasField("inbound_connection_pool")
    ):
        out.error(path, "sidecar: empty configuration provided")
        return
    ports: set[int] = set()
    for index, listener in enumerate(spec.ingress):
        _check_ingress(listener, path / "ingress" / index, ports, out)
    if spec.HasField("inbound_connection_pool"):
        check_connection_pool(spec.inbound_connection_pool, path / "inboundConnectionPool", out)
    ports, sockets = set(), set()
    catch_all = False
    for index, listener in enumerate(spec.egress):
        listener_path = path / "egress" / index
        if not listener.HasField("port"):
            if catch_all:
                out.error(
                    listener_path, "sidecar: egress can have only one listener with empty port"
                )
                continue
            if index != len(spec.egress) - 1:
                out.error(
                    listener_path,
                    "sidecar: the egress listener with empty port should be the last listener "
                    "in the list",
                )
            catch_all = True
        else:
            _check_egress_port(listener, listener_path, out)
            if listener.port.number == 0:
                if listener.bind in sockets:
                    out.error(
                        listener_path / "bind",
                        "sidecar: unix domain socket values for listeners must be unique",
                    )
                sockets.add(listener.bind)
            else:
                if listener.port.number in ports:
                    out.error(
                        listener_path / "port",
                        "sidecar: ports on IP bound listeners must be unique",
                    )
                ports.add(listener.port.number)
        _check_egress_hosts(listener, listener_path, out)
    if spec.HasField("outbound_traffic_policy"):
        _check_outbound(spec.outbound_traffic_policy, path / "outboundTrafficPolicy", out)


def _check_ingress(listener, path: FieldPath, ports: set[int], out: ValidationResult) -> None:
    if not listener.HasField("port"):
        out.error(path / "port", "sidecar: port is required for ingress listeners")
        return
    port = listener.port
    if port.target_port > 0:
        out.error(path / "port" / "targetPort", "targetPort has no impact on Sidecars")
    _check_port_and_bind(port, listener.bind, path, out)
    if port.number in ports:
        out.error(path / "port", "sidecar: ports on IP bound listeners must be unique")
    ports.add(port.number)
    endpoint = listener.default_endpoint
    if endpoint.startswith(UNIX_PREFIX):
        check_unix_address(endpoint[len(UNIX_PREFIX) :], path / "defaultEndpoint", out)
    elif endpoint:
        host, colon, number = endpoint.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not colon:
            out.error(path / "defaultEndpoint", f"address {endpoint}: missing port in address")
        elif host and host not in _LOOPBACKS:
            out.error(
                path / "defaultEndpoint",
                "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,"
                "[::1]:port,[::]:port,unix://filepath or unset",
            )
        if colon and not number.isdecimal():
            out.error(
                path / "defaultEndpoint",
                f"sidecar: defaultEndpoint port ({number}) is not a number",
            )
        elif colon:
            check_port(int(number), path / "defaultEndpoint", out)
    if listener.HasField("tls"):
        _check_ingress_tls(listener, path / "tls", out)
    if listener.HasField("connection_pool"):
        check_connection_pool(listener.connection_pool, path / "connectionPool", out)
        if listener.connection_pool.HasField("http") and (
            protocol_of(port.protocol) not in HTTP_PROTOCOLS
        ):
            out.warn(
                path / "connectionPool",
                f"sidecar: HTTP connection pool settings are configured for port {port.number} "
                f'("{port.name}") but its protocol is not HTTP ({port.protocol}); only TCP '
                "settings will apply",
            )


def _check_ingress_tls(listener, path: FieldPath, out: ValidationResult) -> None:
    tls = listener.tls
    for present, what in (
        (tls.subject_alt_names, "sidecar: subjectAltNames is not supported in ingress tls"),
        (tls.https_redirect, "sidecar: httpsRedirect is not supported"),
        (tls.credential_name, "sidecar: credentialName is not currently supported"),
        (tls.credential_names, "sidecar: credentialNames is not currently supported"),
        (tls.tls_certificates, "sidecar: tls_certificates is not currently supported"),
    ):
        if present:
            out.error(path, what)
    mode = tls.DESCRIPTOR.fields_by_name["mode"].enum_type.values_by_number[tls.mode].name
    if mode in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
        out.error(
            path / "mode",
            f"configuration is invalid: cannot set mode to {mode} in sidecar ingress tls",
        )
    if protocol_of(listener.port.protocol) not in TLS_PROTOCOLS:
        out.error(path, "server cannot have TLS settings for non HTTPS/TLS ports")
    check_server_tls(tls, path, out)


def _check_port_and_bind(port, bind: str, path: FieldPath, out: ValidationResult) -> None:
    if port.name and not is_istio_label(port.name):
        out.error(path / "port" / "name", f"invalid port name: {port.name}")
    check_protocol(port.protocol, path / "port" / "protocol", out)
    check_port(port.number, path / "port" / "number", out)
    if bind:
        check_ip(bind, path / "bind", out)


def _check_egress_port(listener, path: FieldPath, out: ValidationResult) -> None:
    port, bind = listener.port, listener.bind
    if port.target_port > 0:
        out.error(path / "port" / "targetPort", "targetPort has no impact on Sidecars")
    if port.number != 0:
        _check_port_and_bind(port, bind, path, out)
        return
    # Port 0: the listener is a unix domain socket.
    if port.name and not is_istio_label(port.name):
        out.error(path / "port" / "name", f"invalid port name: {port.name}")
    check_protocol(port.protocol, path / "port" / "protocol", out)
    if not bind.startswith(UNIX_PREFIX):
        out.error(
            path / "bind",
            "sidecar: ports with 0 value must have a unix domain socket bind address",
        )
    else:
        check_unix_address(bind[len(UNIX_PREFIX) :], path / "bind", out)
    mode = listener.DESCRIPTOR.fields_by_name["capture_mode"].enum_type
    if mode.values_by_number[listener.capture_mode].name not in ("DEFAULT", "NONE"):
        out.error(
            path / "captureMode",
            "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
        )


def _check_egress_hosts(listener, path: FieldPath, out: ValidationResult) -> None:
    if not listener.hosts:
        out.error(path / "hosts", "sidecar: egress listener must contain at least one host")
        return
    seen: dict[str, set[str]] = {}
    for index, host in enumerate(listener.hosts):
        host_path = path / "hosts" / index
        namespace, slash, name = host.partition("/")
        if slash:
            names = seen.setdefault(namespace, set())
            if (name != "*" and (name in names or "*" in names)) or (name == "*" and names):
                out.warn(host_path, f"duplicated egress host: {host}")
            names.add(name)
        check_namespaced_host(host, host_path, out, gateway=False)
    if "*" in seen.get("*", set()) and len(seen) != 1:
        out.warn(path / "hosts", "`*/*` host select all resources, no other hosts can be added")


def _check_outbound(policy, path: FieldPath, out: ValidationResult) -> None:
    if not policy.HasField("egress_proxy"):
        return
    mode = policy.DESCRIPTOR.fields_by_name["mode"].enum_type.values_by_number[policy.mode].name
    if mode != "ALLOW_ANY":
        out.error(
            path / "egressProxy",
            "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
        )
        return
    problem = check_fqdn(policy.egress_proxy.host)
    if problem:
        out.error(path / "egressProxy" / "host", problem)
    if not policy.egress_proxy.HasField("port"):
        out.error(path / "egressProxy" / "port", "sidecar: egress_proxy port must be non-nil")
        return
    check_destination(policy.egress_proxy, path / "egressProxy", out)
