"""Checks of names: Kubernetes object names and labels, Istio's DNS host names, IP addresses."""

from __future__ import annotations

import ipaddress
import re

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


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


# Istio's own DNS label (pkg/config/labels): RFC 1123, but capitals allowed. Subset, port and
# gateway names use it; Kubernetes object names and namespaces use the lowercase one above.
_ISTIO_LABEL = re.compile(r"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_WILDCARD_LABEL = re.compile(r"^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$")


def is_istio_label(name: str) -> bool:
    return len(name) <= 63 and bool(_ISTIO_LABEL.match(name))


def _dns_preconditions(domain: str) -> str | None:
    if len(domain) > 255:
        return f"domain name {domain[:40]!r}... too long (max 255)"
    if not domain:
        return "empty domain name not allowed"
    return None


def check_dns_labels(domain: str) -> str | None:
    """Istio's ValidateDNS1123Labels: dot-separated labels, a trailing dot allowed."""
    parts = domain.split(".")
    if parts[-1].isdigit():
        return (
            f"domain name {domain!r} invalid (top level domain {parts[-1]!r} cannot be all-numeric)"
        )
    for index, label in enumerate(parts):
        if index == len(parts) - 1 and label == "":
            return None  # `istio.io.`: unambiguous, allowed
        if not is_istio_label(label):
            return f"domain name {domain!r} invalid (label {label!r} invalid)"
    return None


def check_fqdn(domain: str) -> str | None:
    """Why `domain` is not a DNS name without wildcards (Istio's ValidateFQDN), or None."""
    return _dns_preconditions(domain) or check_dns_labels(domain)


def check_wildcard_domain(domain: str) -> str | None:
    """Istio's ValidateWildcardDomain: a DNS name whose first label may be `*`, `*foo`, `*-foo`."""
    problem = _dns_preconditions(domain)
    if problem:
        return problem
    first, dot, rest = domain.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.match(first):
        return f"domain name {domain!r} invalid (label {first!r} invalid)"
    return check_dns_labels(rest) if dot else None


def check_partial_wildcard(host: str) -> str | None:
    if "*" in host and host != "*" and not host.startswith("*."):
        return f"partial wildcard {host!r} not allowed"
    return None


def is_wildcarded(host: str) -> bool:
    return host.startswith("*")


def check_ip_subnet(subnet: str) -> str | None:
    """An IP address or a CIDR block (Istio's ValidateIPSubnet)."""
    if subnet.count("/") == 1:
        try:
            ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            return f"{subnet} is not a valid CIDR block"
        return None
    return None if is_ip(subnet) else f"{subnet} is not a valid IP"


def host_matches(a: str, b: str) -> bool:
    """Istio's host.Name.Matches: equal, or a wildcard of one covers the other."""
    if is_wildcarded(a) and is_wildcarded(b):
        shorter, longer = sorted((a, b), key=len)
        return longer[1:].endswith(shorter[1:])
    if is_wildcarded(a):
        return b.endswith(a[1:])
    if is_wildcarded(b):
        return a.endswith(b[1:])
    return a == b


def host_subset_of(a: str, b: str) -> bool:
    """Istio's host.Name.SubsetOf: every name `a` matches, `b` matches too."""
    if is_wildcarded(a):
        return is_wildcarded(b) and len(a) >= len(b) and a[1:].endswith(b[1:])
    if is_wildcarded(b):
        return a.endswith(b[1:])
    return a == b
