"""Typed values from text, and the type-aware equality Mixer applies to them.

Conversions raise EvalError on bad input (Mixer's `ip("x")` fails the evaluation, it does not
return a zero value). Equality follows Istio's externs: IP addresses compare as addresses
(an IPv4 address equals its IPv4-mapped IPv6 form), DNS names ignore case and a trailing
dot, e-mail addresses compare their domain as a DNS name and their local part exactly, and
http(s) URIs compare scheme and host without case.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import urllib.parse
from collections.abc import Callable

from pkg.lang.errors import EvalError
from pkg.lang.types import ValueType

_V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"

# RFC 3339 exactly as Go's time.RFC3339 layout parses it (fractional seconds allowed).
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})"
)
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?")
# RFC 5322 local part: a dot-atom (UTF-8 allowed, as RFC 6532 and Go allow) or a quoted string.
_ATEXT = "[-A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff]+"
_EMAIL_LOCAL = re.compile(rf'{_ATEXT}(?:\.{_ATEXT})*|"(?:[^"\\\r\n]|\\.)*"')
_BAD_HOST = re.compile(r"[\s{}|\\^`]")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def ip(text: str) -> bytes:
    """`ip("10.1.2.3")`: 4 packed bytes for IPv4, 16 for IPv6."""
    if "%" in text:  # Go's net.ParseIP refuses zones, Python accepts them
        raise EvalError(f"could not convert {text!r} to IP_ADDRESS")
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise EvalError(f"could not convert {text!r} to IP_ADDRESS") from None


def ip_equal(a: bytes, b: bytes) -> bool:
    if len(a) == len(b):
        return a == b
    # net.IP.Equal: a 4-byte address equals its ::ffff:a.b.c.d form.
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return len(short) == 4 and len(long) == 16 and long == _V4_MAPPED_PREFIX + short


def timestamp(text: str) -> datetime.datetime:
    """`timestamp("2015-01-02T15:04:35Z")`: an RFC 3339 time, timezone-aware."""
    found = _RFC3339.fullmatch(text)
    if found is None:
        raise EvalError(f"could not convert {text!r} to TIMESTAMP: want RFC 3339")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    try:
        if zone == "Z":
            tz = datetime.UTC
        else:
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("bad zone offset")
            offset = datetime.timedelta(hours=hours, minutes=minutes)
            tz = datetime.timezone(-offset if zone[0] == "-" else offset)
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
    except ValueError as error:
        raise EvalError(f"could not convert {text!r} to TIMESTAMP: {error}") from None


def dns_name(text: str) -> str:
    """`dnsName("www.istio.io")`: checked (labels of letters, digits and inner hyphens, at
    most 63 characters each, 253 in all; internationalized labels allowed), kept as given."""
    problem = _dns_problem(text)
    if problem:
        raise EvalError(f"error converting {text!r} to dns name: {problem}")
    return text


def _dns_problem(text: str) -> str | None:
    name = text[:-1] if text.endswith(".") else text
    if not name:
        return "empty name"
    try:
        ascii_name = _to_ascii(name)
    except UnicodeError as error:
        return str(error)
    if len(ascii_name) > 253:
        return "name longer than 253 characters"
    for label in ascii_name.split("."):
        if not label:
            return "empty label"
        if len(label) > 63:
            return f"label {label!r} longer than 63 characters"
        if not _DNS_LABEL.fullmatch(label):
            return f"invalid label {label!r}"
    return None


def _to_ascii(name: str) -> str:
    """The lookup form of a DNS name: lowercase ASCII, internationalized labels in punycode."""
    if name.isascii():
        return name.lower()
    return name.encode("idna").decode("ascii").lower()


def _dns_key(name: str) -> str:
    try:
        key = _to_ascii(name)
    except UnicodeError as error:
        raise EvalError(f"invalid dns name {name!r}: {error}") from None
    return key[:-1] if key.endswith(".") else key


def dns_name_equal(a: str, b: str) -> bool:
    return a == b or _dns_key(a) == _dns_key(b)


def email_address(text: str) -> str:
    """`email("user@istio.io")`: a bare address (no display name) with a valid domain."""
    _, domain = _email_parts(text)
    problem = _dns_problem(domain)
    if problem:
        raise EvalError(f"error converting {text!r} to e-mail: {problem}")
    return text


def _email_parts(text: str) -> tuple[str, str]:
    address = text.strip()
    if address.startswith("<") and address.endswith(">"):  # Go's mail.ParseAddress takes <a@b>
        address = address[1:-1]
    local, at, domain = address.rpartition("@")
    if not at or not domain or not _EMAIL_LOCAL.fullmatch(local):
        raise EvalError(f"error converting {text!r} to e-mail: want a bare address user@domain")
    return local, domain


def email_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    local_a, domain_a = _email_parts(a)
    local_b, domain_b = _email_parts(b)
    return local_a == local_b and dns_name_equal(domain_a, domain_b)


def uri(text: str) -> str:
    """`uri("http://istio.io")`: a non-empty URI Go's url.Parse would accept, kept as given."""
    if not text:
        raise EvalError("error converting string to uri: empty string")
    _parse_uri(text)
    return text


def _parse_uri(text: str) -> urllib.parse.SplitResult:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise EvalError(f"error converting {text!r} to uri: invalid control character")
    if text.startswith(":"):
        raise EvalError(f"error converting {text!r} to uri: missing protocol scheme")
    if _PERCENT.search(text.split("#", 1)[0]):
        raise EvalError(f"error converting {text!r} to uri: invalid percent escape")
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as error:
        raise EvalError(f"error converting {text!r} to uri: {error}") from None
    if _BAD_HOST.search(parts.netloc):
        raise EvalError(f"error converting {text!r} to uri: invalid character in host name")
    return parts


def uri_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    first, second = _parse_uri(a), _parse_uri(b)
    if first.scheme.lower() != second.scheme.lower():
        return False
    if first.scheme.lower() in ("http", "https"):
        if not dns_name_equal(first.hostname or "", second.hostname or "") or (
            first.port != second.port
        ):
            return False
        return _after_host(first) == _after_host(second)
    return first[1:] == second[1:]


def _after_host(parts: urllib.parse.SplitResult) -> tuple[str | None, ...]:
    return (parts.username, parts.password, parts.path, parts.query, parts.fragment)


EQUALITY: dict[ValueType, Callable[[object, object], bool]] = {
    ValueType.IP_ADDRESS: ip_equal,  # type: ignore[dict-item]
    ValueType.DNS_NAME: dns_name_equal,  # type: ignore[dict-item]
    ValueType.EMAIL_ADDRESS: email_equal,  # type: ignore[dict-item]
    ValueType.URI: uri_equal,  # type: ignore[dict-item]
}


def equality(value_type: ValueType) -> Callable[[object, object], bool] | None:
    """The equality of `value_type` when plain `==` is not it, else None."""
    return EQUALITY.get(value_type)
