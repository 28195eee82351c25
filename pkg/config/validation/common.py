"""Checks shared by the validators of several kinds, after Istio's pkg/config/validation/agent.

Messages are Istio's where Istio has one, so a user searching for the text finds Istio's
documentation and issues. Proto maps have no order, so validators walk them sorted: the same
input always gives the same list of problems.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

import re2
from google.protobuf import duration_pb2

from pkg.config.validation.names import (
    check_label,
    check_wildcard_domain,
    is_ip,
    is_istio_label,
)
from pkg.config.validation.result import FieldPath, ValidationResult

UNIX_PREFIX = "unix://"
MAX_REGEX_LENGTH = 1024  # Envoy's default RE2 program size limit, approximated by length

# Istio's protocol.Parse, case-insensitive; "" means "detect" (protocol sniffing).
PROTOCOLS = {
    p.lower(): p
    for p in (
        "TCP",
        "UDP",
        "GRPC",
        "GRPC-Web",
        "HTTP",
        "HTTP_PROXY",
        "HTTP2",
        "HTTPS",
        "TLS",
        "Mongo",
        "Redis",
        "MySQL",
    )
}
HTTP_PROTOCOLS = {"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web"}
TLS_PROTOCOLS = {"HTTPS", "TLS"}
TCP_PROTOCOLS = {"TCP", "HTTPS", "TLS", "Mongo", "Redis", "MySQL"}


def seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def check_duration(duration: duration_pb2.Duration, path: FieldPath, out: ValidationResult) -> None:
    """Istio's ValidateDuration: at least a millisecond, in whole milliseconds."""
    nanos = duration.seconds * 1_000_000_000 + duration.nanos
    if nanos < 1_000_000:
        out.error(path, "duration must be greater than 1ms")
    elif nanos % 1_000_000:
        out.error(path, "only durations to ms precision are supported")


def check_regex(pattern: str, path: FieldPath, out: ValidationResult) -> None:
    """Envoy matches with RE2, so a pattern must compile under RE2's rules, not Python's."""
    if not pattern:
        out.error(path, "regex string match should not be empty")
        return
    if len(pattern) > MAX_REGEX_LENGTH:
        out.error(path, f"regex is too large, max length allowed is {MAX_REGEX_LENGTH}")
        return
    try:
        re2.compile(pattern)
    except re2.error as error:
        reason = (
            error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else error
        )
        out.error(
            path,
            f"invalid regular expression {pattern!r}: {reason}; Istio uses RE2 style "
            "regex-based match (https://github.com/google/re2/wiki/Syntax)",
        )


def check_port(number: int, path: FieldPath, out: ValidationResult) -> None:
    if not 1 <= number <= 65535:
        out.error(path, f"port number {number} must be in the range 1..65535")


def check_percent(value: int, path: FieldPath, out: ValidationResult) -> None:
    if not 0 <= value <= 100:
        out.error(path, f"percentage {value} is not in range 0..100")


def check_percentage(value: float, path: FieldPath, out: ValidationResult) -> None:
    """A Percent message: 0, or between 0.0001 and 100 (Envoy's fractional percent)."""
    if value < 0 or value > 100 or 0 < value < 0.0001:
        out.error(path, f"percentage {value} is neither 0.0, nor in range [0.0001, 100.0]")


def check_host(host: str, path: FieldPath, out: ValidationResult) -> None:
    """A DNS name whose first label may be a wildcard (Istio's ValidateWildcardDomain)."""
    problem = check_wildcard_domain(host)
    if problem:
        out.error(path, problem)


def check_labels(labels: Mapping[str, str], path: FieldPath, out: ValidationResult) -> None:
    for key, value in sorted(labels.items()):
        problem = check_label(key, value)
        if problem:
            out.error(path / key, problem)


def protocol_of(text: str) -> str | None:
    """Istio's name of a protocol (`http` is HTTP), or None if unsupported."""
    return PROTOCOLS.get(text.lower())


def check_protocol(protocol: str, path: FieldPath, out: ValidationResult) -> None:
    """Istio's ValidateProtocol: a known protocol, or empty to have the proxy detect it."""
    if protocol and protocol_of(protocol) is None:
        out.error(path, f"unsupported protocol: {protocol}")


def check_unique(names: list[str], path: FieldPath, out: ValidationResult, *, what: str) -> None:
    """Each name once; the error points at the second use."""
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            out.error(path / index, f"duplicate {what} {name!r}")
        seen.add(name)


def check_unix_address(address: str, path: FieldPath, out: ValidationResult) -> None:
    """The part after `unix://`: an absolute file path, or `@name` (an abstract socket)."""
    if not address:
        out.error(path, "unix address must not be empty")
    elif address.startswith("@"):
        return
    elif not posixpath.isabs(address) or address.endswith("/"):
        out.error(path, f"{address} is not an absolute path to a file")


def check_ip(address: str, path: FieldPath, out: ValidationResult) -> None:
    if not is_ip(address):
        out.error(path, f"{address} is not a valid IP")


def check_selector_labels(
    labels: Mapping[str, str], path: FieldPath, out: ValidationResult
) -> None:
    """A workload selector's labels: no empty keys, no wildcards; none at all is a warning."""
    for key, value in sorted(labels.items()):
        if not key:
            out.error(path, f'empty key is not supported in selector: "{key}={value}"')
        if "*" in key or "*" in value:
            out.error(path, f'wildcard is not supported in selector: "{key}={value}"')
    if not labels:
        out.warn(path, "workload selector specified without labels")


def check_export_to(
    namespace_values: Iterable[str], path: FieldPath, out: ValidationResult, *, service_entry=False
) -> None:
    """exportTo: `*`, `.`, namespaces (and `~` for a ServiceEntry), each once, `*` alone."""
    values = list(namespace_values)
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            out.error(path / index, f"duplicate entries in exportTo for entry {value}")
            continue
        seen.add(value)
        if value in ("*", "."):
            continue
        if value == "~":
            if not service_entry:
                out.error(
                    path / index,
                    "exportTo ~ (none) is not allowed for Istio configuration objects",
                )
            continue
        if not is_istio_label(value):
            out.error(
                path / index, "only .,*, or a valid DNS 1123 label is allowed as exportTo entry"
            )
    if "*" in seen and len(values) > 1:
        out.error(path, "cannot have both public (*) and non-public exportTo values for a resource")
    if "~" in seen and len(values) > 1:
        out.error(path, "cannot export service entry to no one (~) and someone")
