"""Checks of names: Kubernetes object names and labels, DNS host names, IP addresses."""

from __future__ import annotations

import ipaddress
import re

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+\-.^_`|~]+$")


def is_dns1123_label(name: str) -> bool:
    """A Kubernetes namespace or a subset name: lowercase, at most 63 characters."""
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def is_dns1123_subdomain(name: str) -> bool:
    """A Kubernetes object name: dot-separated DNS-1123 labels, at most 253 characters."""
    return 0 < len(name) <= 253 and all(is_dns1123_label(part) for part in name.split("."))


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def check_hostname(host: str, *, wildcard: bool = True) -> str | None:
    """Why `host` is not a valid DNS name (optionally with a leading `*.`), or None.

    Short names (`reviews`) are valid: Istio resolves them against the resource's namespace.
    """
    if not host:
        return "a host name must not be empty"
    if len(host) > 255:
        return f"host name {host!r} is longer than 255 characters"
    if wildcard and host == "*":
        return None
    name = host
    if wildcard and host.startswith("*."):
        name = host[2:]
    elif wildcard and host.startswith("*"):
        name = host[1:]
        if not name:
            return None
    labels = name.rstrip(".").split(".")
    for label in labels:
        if len(label) > 63 or not _DNS_LABEL.match(label):
            return f"{host!r} is not a valid host name (label {label!r})"
    return None


def check_label(key: str, value: str) -> str | None:
    """Why a Kubernetes label `key: value` is invalid, or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and not is_dns1123_subdomain(prefix):
        return f"label key {key!r} has an invalid prefix {prefix!r}"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return f"label key {key!r} is not a valid label name"
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return f"label value {value!r} of {key!r} is not a valid label value"
    return None


def is_header_name(name: str) -> bool:
    """An HTTP header name as Istio wants it in config: lowercase token characters."""
    return bool(_HEADER_NAME.match(name))
