"""ServiceEntry and WorkloadEntry (after Istio's ValidateServiceEntry, ValidateWorkloadEntry).

What resolution a ServiceEntry asks for decides what else it may say: NONE forwards to wherever
the caller was going, so endpoints are meaningless; DNS resolves the hosts themselves unless
endpoints are given, so a wildcard host needs endpoints; CIDR addresses only make sense without
DNS. Ports are optional (a ServiceEntry may only declare hosts, e.g. for a Sidecar).
"""

from __future__ import annotations

from pkg.config.validation.common import (
    HTTP_PROTOCOLS,
    TCP_PROTOCOLS,
    TLS_PROTOCOLS,
    UNIX_PREFIX,
    check_export_to,
    check_labels,
    check_port,
    check_protocol,
    check_selector_labels,
    check_unix_address,
    protocol_of,
)
from pkg.config.validation.names import (
    check_fqdn,
    check_ip_subnet,
    check_partial_wildcard,
    check_wildcard_domain,
    is_dns1123_subdomain,
    is_ip,
    is_istio_label,
)
from pkg.config.validation.result import FieldPath, ValidationResult


def validate_service_entry(spec, path: FieldPath, out: ValidationResult) -> None:
    resolution = _name(spec, "resolution", spec.resolution)
    if spec.HasField("workload_selector"):
        labels = spec.workload_selector.labels
        selector_path = path / "workloadSelector" / "labels"
        check_labels(labels, selector_path, out)
        if not labels:
            out.warn(
                selector_path,
                "service entry: workload selector specified without labels, will be applied to "
                "all services in namespace",
            )
        else:
            check_selector_labels(labels, selector_path, out)
        if spec.endpoints:
            out.error(
                path / "endpoints",
                "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
            )
    if not spec.hosts:
        out.error(path / "hosts", "service entry must have at least one host")
    for index, host in enumerate(spec.hosts):
        host_path = path / "hosts" / index
        if host == "*":
            out.error(host_path, f"invalid host {host}")
            continue
        problem = check_wildcard_domain(host)
        if problem:
            out.error(host_path, problem)
        partial = check_partial_wildcard(host)
        if partial:
            out.warn(host_path, partial)
    cidr = False
    for index, address in enumerate(spec.addresses):
        cidr = cidr or "/" in address
        problem = check_ip_subnet(address)
        if problem:
            out.error(path / "addresses" / index, problem)
    if cidr and resolution not in ("NONE", "STATIC"):
        out.error(
            path / "addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types"
        )
    names, numbers = set(), set()
    for index, port in enumerate(spec.ports):
        port_path = path / "ports" / index
        if port.name in names:
            out.error(port_path / "name", f'service entry port name "{port.name}" already defined')
        if port.number in numbers:
            out.error(port_path / "number", f"service entry port {port.number} already defined")
        names.add(port.name)
        numbers.add(port.number)
        if port.target_port:
            check_port(port.target_port, port_path / "targetPort", out)
        if not spec.addresses and (port.protocol in ("", "TCP")):
            out.warn(
                port_path / "protocol",
                "addresses are required for ports serving TCP (or unset) protocol when IP "
                "Autoallocation is not enabled",
            )
        if not is_istio_label(port.name):
            out.error(port_path / "name", f"invalid port name: {port.name}")
        check_protocol(port.protocol, port_path / "protocol", out)
        check_port(port.number, port_path / "number", out)
    _check_resolution(spec, resolution, names, path, out)
    if resolution != "NONE" and len(spec.hosts) > 1:
        for port in spec.ports:
            protocol = protocol_of(port.protocol)
            if protocol not in HTTP_PROTOCOLS and protocol not in TLS_PROTOCOLS:
                out.error(path / "ports", "multiple hosts provided with non-HTTP, non-TLS ports")
                break
    check_export_to(spec.export_to, path / "exportTo", out, service_entry=True)


def _name(message, field: str, number: int) -> str:
    return message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number[number].name


def _check_resolution(spec, resolution: str, ports: set[str], path, out: ValidationResult) -> None:
    endpoints_path = path / "endpoints"
    if resolution == "NONE":
        if spec.endpoints:
            out.error(endpoints_path, "no endpoints should be provided for resolution type none")
        if spec.HasField("workload_selector"):
            out.warn(
                path / "workloadSelector",
                "workloadSelector should not be set when resolution mode is NONE",
            )
    elif resolution == "STATIC":
        for index, endpoint in enumerate(spec.endpoints):
            check_workload(endpoint, endpoints_path / index, out, ports=ports, fqdn=False)
    elif resolution in ("DNS", "DNS_ROUND_ROBIN"):
        if not spec.endpoints:
            for index, host in enumerate(spec.hosts):
                problem = check_fqdn(host)
                if problem:
                    out.error(
                        path / "hosts" / index,
                        "hosts must be FQDN or contain only prefix wildcards if no endpoints are "
                        f"provided for resolution mode {resolution}, {problem}",
                    )
                    break
        if resolution == "DNS_ROUND_ROBIN" and len(spec.endpoints) > 1:
            out.error(
                endpoints_path,
                f"there must only be 0 or 1 endpoint for resolution mode {resolution}",
            )
        for index, endpoint in enumerate(spec.endpoints):
            endpoint_path = endpoints_path / index
            if not is_ip(endpoint.address) and check_fqdn(endpoint.address):
                out.error(
                    endpoint_path / "address",
                    f'endpoint address "{endpoint.address}" is not a valid FQDN or an IP address',
                )
            check_labels(endpoint.labels, endpoint_path / "labels", out)
            _check_endpoint_ports(endpoint, endpoint_path, out, ports=ports)
        tcp = any(protocol_of(p.protocol) in TCP_PROTOCOLS for p in spec.ports)
        if spec.addresses and len(spec.hosts) > 1 and tcp:
            out.warn(
                path / "hosts",
                "service entry can not have more than one host specified simultaneously "
                "with address and tcp port",
            )


def validate_workload_entry(spec, path: FieldPath, out: ValidationResult) -> None:
    check_workload(spec, path, out, ports=None, fqdn=True)


def check_workload(entry, path: FieldPath, out: ValidationResult, *, ports, fqdn: bool) -> None:
    """A WorkloadEntry, or a STATIC ServiceEntry's endpoint (`ports`: the service's names)."""
    address = entry.address
    if not address:
        if not entry.network:
            out.error(path / "address", "address is required")
            return
        # Reached through the network's gateway: the address is that of the gateway.
        out.warn(path / "address", f'address is unset with network "{entry.network}"')
    unix = address.startswith(UNIX_PREFIX)
    if unix:
        check_unix_address(address[len(UNIX_PREFIX) :], path / "address", out)
        if entry.ports:
            out.error(path / "ports", f"unix endpoint {address} must not include ports")
    elif address and not is_ip(address):
        if not fqdn:
            out.error(path / "address", f'endpoint address "{address}" is not a valid IP address')
        elif check_fqdn(address):
            out.error(
                path / "address",
                f'endpoint address "{address}" is not a valid FQDN or an IP address',
            )
    _check_endpoint_ports(entry, path, out, ports=ports)
    check_labels(entry.labels, path / "labels", out)
    if unix and ports is not None and len(ports) != 1:
        out.error(path, "exactly 1 service port required for unix endpoints")
    if entry.service_account and not is_dns1123_subdomain(entry.service_account):
        out.error(path / "serviceAccount", f"{entry.service_account!r} is not a valid name")


def _check_endpoint_ports(entry, path: FieldPath, out: ValidationResult, *, ports) -> None:
    for name, number in sorted(entry.ports.items()):
        port_path = path / "ports" / name
        if ports is not None and name not in ports:
            out.error(port_path, f"endpoint port {number} is not defined by the service entry")
        if not is_istio_label(name):
            out.error(port_path, f"invalid port name: {name}")
        check_port(number, port_path, out)
