"""Gateway: servers, their ports, binds, hosts and TLS (after Istio's ValidateGateway).

A plain HTTP server may carry TLS settings only to redirect to HTTPS (`httpsRedirect`, in the
default PASSTHROUGH mode); certificates on it would never be used, so Istio refuses them.
"""

from __future__ import annotations

from pkg.config.validation.common import (
    HTTP_PROTOCOLS,
    TLS_PROTOCOLS,
    UNIX_PREFIX,
    check_ip,
    check_labels,
    check_port,
    check_unix_address,
    protocol_of,
)
from pkg.config.validation.names import (
    check_partial_wildcard,
    check_wildcard_domain,
    is_ip,
    is_istio_label,
)
from pkg.config.validation.result import FieldPath, ValidationResult

CIPHER_SUITES = frozenset(
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
        "DES-CBC3-SHA",
    }
)


def check_gateway_name(name: str, path: FieldPath, out: ValidationResult) -> None:
    """A Gateway's own name is a DNS label: no dots (gateways are referenced as ns/name)."""
    if not is_istio_label(name):
        out.error(path, f'invalid gateway name: "{name}"')


def validate_gateway(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.servers:
        out.error(path / "servers", "gateway must have at least one server")
    check_labels(spec.selector, path / "selector", out)
    names: set[str] = set()
    for index, server in enumerate(spec.servers):
        server_path = path / "servers" / index
        _check_server(server, server_path, out)
        if server.HasField("port"):
            if server.port.name in names:
                out.error(
                    server_path / "port" / "name",
                    f"port names in servers must be unique: duplicate name {server.port.name}",
                )
            names.add(server.port.name)
            if (
                protocol_of(server.port.protocol) not in HTTP_PROTOCOLS
                and server.tls.https_redirect
            ):
                out.warn(
                    server_path / "tls" / "httpsRedirect",
                    "tls.httpsRedirect should only be used with http servers",
                )


def _check_server(server, path: FieldPath, out: ValidationResult) -> None:
    if not server.hosts:
        out.error(path / "hosts", "server config must contain at least one host")
    for index, host in enumerate(server.hosts):
        check_namespaced_host(host, path / "hosts" / index, out, gateway=True)
    port_ok = _check_server_port(server, path / "port", out)
    _check_bind(server.bind, server.port.number if server.HasField("port") else 0, path, out)
    if server.HasField("tls"):
        check_server_tls(server.tls, path / "tls", out)
    if not port_ok:
        return
    protocol = protocol_of(server.port.protocol)
    if protocol in TLS_PROTOCOLS and not server.HasField("tls"):
        out.error(path / "tls", "server must have TLS settings for HTTPS/TLS protocols")
    elif protocol not in TLS_PROTOCOLS and server.HasField("tls"):
        tls = server.tls
        if protocol in HTTP_PROTOCOLS:
            mode = _mode(tls)
            if (
                mode not in ("PASSTHROUGH", "AUTO_PASSTHROUGH")
                or tls.ca_certificates
                or tls.private_key
                or tls.server_certificate
            ):
                out.error(path / "tls", "server cannot have TLS settings for plain text HTTP ports")
        else:
            out.error(path / "tls", "server cannot have TLS settings for non HTTPS/TLS ports")


def _check_server_port(server, path: FieldPath, out: ValidationResult) -> bool:
    """Whether the port is usable for the protocol checks that follow."""
    if not server.HasField("port"):
        out.error(path, "port is required")
        return False
    port, ok = server.port, True
    if protocol_of(port.protocol) is None:
        out.error(
            path / "protocol",
            f'invalid protocol "{port.protocol}", supported protocols are HTTP, HTTP2, GRPC, '
            "GRPC-WEB, MONGO, REDIS, MYSQL, TCP",
        )
        ok = False
    if port.number > 0 or not server.bind.startswith(UNIX_PREFIX):
        before = len(out.errors)
        check_port(port.number, path / "number", out)
        ok = ok and len(out.errors) == before
    if port.target_port > 0:
        out.error(path / "targetPort", "targetPort has no impact on Gateways")
    if not port.name:
        out.error(path / "name", "port name must be set")
        ok = False
    return ok


def _check_bind(bind: str, number: int, path: FieldPath, out: ValidationResult) -> None:
    if bind.startswith(UNIX_PREFIX):
        check_unix_address(bind[len(UNIX_PREFIX) :], path / "bind", out)
        if number != 0:
            out.error(path / "port" / "number", "port number must be 0 for unix domain socket")
    elif bind:
        check_ip(bind, path / "bind", out)


def check_namespaced_host(
    host: str, path: FieldPath, out: ValidationResult, *, gateway: bool
) -> None:
    """`namespace/dnsName` (a Gateway also takes a bare dnsName, or an IP)."""
    namespace, slash, name = host.partition("/")
    if not slash:
        if gateway:
            _check_host_part(host, path, out, gateway=True)
        else:
            out.error(path, "host must be of form namespace/dnsName")
        return
    if not namespace or not name:
        out.error(path, "config namespace and dnsName in host entry cannot be empty")
    specials = ("*", ".") if gateway else ("*", ".", "~")
    if namespace not in specials and not is_istio_label(namespace):
        where = "gateway" if gateway else "sidecar"
        out.error(path, f'invalid namespace value "{namespace}" in {where}')
    _check_host_part(name, path, out, gateway=gateway)


def _check_host_part(host: str, path: FieldPath, out: ValidationResult, *, gateway: bool) -> None:
    if host != "*" and "." not in host:
        out.error(path, "short names (non FQDN) are not allowed")
    problem = check_wildcard_domain(host)
    if problem and not (gateway and is_ip(host)):
        out.error(path, problem)
    problem = check_partial_wildcard(host)
    if problem:
        out.error(path, problem)


def _mode(tls) -> str:
    return tls.DESCRIPTOR.fields_by_name["mode"].enum_type.values_by_number[tls.mode].name


def check_server_tls(tls, path: FieldPath, out: ValidationResult) -> None:
    """validateTLSOptions: the server side of TLS, by mode (Gateway and Sidecar ingress)."""
    versions = tls.DESCRIPTOR.fields_by_name["min_protocol_version"].enum_type
    minimum = versions.values_by_number[tls.min_protocol_version].name
    if minimum in ("TLSV1_0", "TLSV1_1") and not tls.cipher_suites:
        out.warn(
            path / "minProtocolVersion",
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they no "
            "longer include compatible ciphers.",
        )
    invalid = sorted({c for c in tls.cipher_suites if not _valid_cipher(c)})
    if invalid:
        out.warn(path / "cipherSuites", f"ignoring invalid cipher suites: [{' '.join(invalid)}]")
    valid = [c for c in tls.cipher_suites if _valid_cipher(c)]
    duplicates = sorted({c for c in valid if valid.count(c) > 1})
    if duplicates:
        out.warn(
            path / "cipherSuites", f"ignoring duplicate cipher suites: [{' '.join(duplicates)}]"
        )
    mode = _mode(tls)
    if mode == "ISTIO_MUTUAL":
        for present, what in (
            (tls.server_certificate, "server certificate"),
            (tls.private_key, "private key"),
            (tls.ca_certificates, "CA bundle"),
            (tls.tls_certificates, "tlsCertificates"),
            (tls.credential_name, "credentialName"),
            (tls.credential_names, "credentialNames"),
        ):
            if present:
                out.error(path, f"ISTIO_MUTUAL TLS cannot have associated {what}")
        return
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH") and (
        tls.ca_crl
        or tls.server_certificate
        or tls.private_key
        or tls.ca_certificates
        or tls.tls_certificates
        or tls.credential_name
        or tls.credential_names
    ):
        out.warn(path, f"{mode} mode does not use certificates, they will be ignored")
    sources = sum(
        bool(s)
        for s in (
            tls.server_certificate and tls.private_key,
            tls.credential_name,
            tls.credential_names,
            tls.tls_certificates,
        )
    )
    if sources > 1:
        out.error(
            path,
            "only one of credential_name, credential_names, server_certificate/private_key, "
            "tls_certificates should be specified",
        )
    terminating = mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")
    if terminating and (tls.credential_name or tls.credential_names):
        return  # the certificates come from a secret, fetched by the proxy
    if terminating:
        prefix = "SIMPLE TLS" if mode == "SIMPLE" else "MUTUAL TLS"
        if mode != "SIMPLE" and not tls.ca_certificates:
            out.error(path / "caCertificates", f"{prefix} requires a client CA bundle")
        if len(tls.tls_certificates) > 2:
            out.warn(path / "tlsCertificates", f"{prefix} can support up to 2 server certificates")
        certificates = list(tls.tls_certificates) or [tls]
        for certificate in certificates:
            if not certificate.server_certificate:
                out.error(path, f"{prefix} requires a server certificate")
            if not certificate.private_key:
                out.error(path, f"{prefix} requires a private key")
    if tls.ca_crl:
        if tls.credential_name:
            out.error(
                path / "caCrl",
                "CRL is not supported with credentialName. CRL has to be specified in the "
                "credential",
            )
        if mode == "SIMPLE":
            out.error(path / "caCrl", "CRL is not supported with SIMPLE TLS")


def _valid_cipher(cipher: str) -> bool:
    if cipher in ("", "ALL") or not cipher[0].isalnum():
        return True  # `-`/`+`/`!` operators of OpenSSL's cipher strings pass through
    return cipher in CIPHER_SUITES
