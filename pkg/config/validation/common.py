"""Checks shared by the validators of several kinds.

Proto maps have no order, so validators walk them sorted: the same input always gives the
same list of problems.
"""

from __future__ import annotations

import re2
from google.protobuf import duration_pb2

from pkg.config.validation.names import check_hostname, check_label, is_ip
from pkg.config.validation.result import FieldPath, ValidationResult

MIN_DURATION_SECONDS = 0.001  # Istio refuses timeouts and intervals under a millisecond

PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "REDIS", "MYSQL", "TCP", "TLS")


def seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def check_duration(
    duration: duration_pb2.Duration, path: FieldPath, out: ValidationResult, *, what: str
) -> None:
    if seconds(duration) < MIN_DURATION_SECONDS:
        out.error(path, f"{what} must be at least 1ms, got {seconds(duration)}s")


def check_regex(pattern: str, path: FieldPath, out: ValidationResult) -> None:
    """Envoy matches with RE2, so a pattern must compile under RE2's rules, not Python's."""
    try:
        re2.compile(pattern)
    except re2.error as error:
        reason = (
            error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else error
        )
        out.error(path, f"invalid regular expression {pattern!r}: {reason}")


def check_port(number: int, path: FieldPath, out: ValidationResult) -> None:
    if not 1 <= number <= 65535:
        out.error(path, f"port {number} is out of range [1, 65535]")


def check_percent(value: float, path: FieldPath, out: ValidationResult) -> None:
    if not 0 <= value <= 100:
        out.error(path, f"percentage {value} is out of range [0, 100]")


def check_host(host: str, path: FieldPath, out: ValidationResult, *, wildcard=True) -> None:
    problem = check_hostname(host, wildcard=wildcard)
    if problem:
        out.error(path, problem)


def check_labels(labels, path: FieldPath, out: ValidationResult) -> None:
    for key, value in sorted(labels.items()):
        problem = check_label(key, value)
        if problem:
            out.error(path / key, problem)


def check_protocol(protocol: str, path: FieldPath, out: ValidationResult) -> None:
    if protocol.upper() not in PROTOCOLS:
        out.error(path, f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")


def check_unique(names: list[str], path: FieldPath, out: ValidationResult, *, what: str) -> None:
    """Each name once; the error points at the second use."""
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            out.error(path / index, f"duplicate {what} {name!r}")
        seen.add(name)


def check_address(address: str, path: FieldPath, out: ValidationResult) -> None:
    """An endpoint address: an IP, a DNS name or a unix:// socket path."""
    if address.startswith("unix://"):
        if len(address) == len("unix://"):
            out.error(path, "a unix:// address needs a socket path")
        return
    if not is_ip(address):
        check_host(address, path, out, wildcard=False)
