"""The lists a listchecker checks values against, one kind per `entryType`.

- STRINGS: exact text;
- CASE_INSENSITIVE_STRINGS: text compared case-folded;
- IP_ADDRESSES: addresses and CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`, `1.2.3.4`);
- REGEX: RE2 expressions (linear time, whatever the pattern), matched anywhere in the value
  as Go's `MatchString` does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, Protocol

import re2

ENTRY_TYPES = ("STRINGS", "CASE_INSENSITIVE_STRINGS", "IP_ADDRESSES", "REGEX")


class EntryError(ValueError):
    """An entry that is not valid for the list's entry type."""


class EntryList(Protocol):
    def __len__(self) -> int: ...

    def contains(self, value: Any) -> bool:
        """Raises ValueError when the value cannot be of this list's type (a bad IP)."""
        ...


class StringList:
    def __init__(self, entries: Iterable[str], *, fold_case: bool = False) -> None:
        self._fold = fold_case
        self._entries = frozenset(self._key(e) for e in entries)

    def _key(self, text: str) -> str:
        return text.casefold() if self._fold else text

    def __len__(self) -> int:
        return len(self._entries)

    def contains(self, value: Any) -> bool:
        return self._key(str(value)) in self._entries


class IpList:
    def __init__(self, entries: Iterable[str]) -> None:
        networks = [parse_network(e) for e in entries]
        # Containment checks per address family only; collapse merges overlapping ranges.
        self._v4 = list(ipaddress.collapse_addresses(n for n in networks if n.version == 4))
        self._v6 = list(ipaddress.collapse_addresses(n for n in networks if n.version == 6))

    def __len__(self) -> int:
        return len(self._v4) + len(self._v6)

    def contains(self, value: Any) -> bool:
        address = parse_address(value)
        networks = self._v4 if address.version == 4 else self._v6
        return any(address in network for network in networks)


class RegexList:
    def __init__(self, entries: Iterable[str]) -> None:
        self._patterns = [compile_regex(e) for e in entries]

    def __len__(self) -> int:
        return len(self._patterns)

    def contains(self, value: Any) -> bool:
        text = str(value)
        return any(p.search(text) is not None for p in self._patterns)


def build_list(entry_type: str, entries: Iterable[str]) -> EntryList:
    """The list for `entry_type`; raises EntryError for the first invalid entry."""
    if entry_type == "STRINGS":
        return StringList(entries)
    if entry_type == "CASE_INSENSITIVE_STRINGS":
        return StringList(entries, fold_case=True)
    if entry_type == "IP_ADDRESSES":
        return IpList(entries)
    if entry_type == "REGEX":
        return RegexList(entries)
    raise EntryError(f"unknown entry type {entry_type!r}")


def check_entry(entry_type: str, entry: str) -> None:
    """Raises EntryError when `entry` is not valid for `entry_type`."""
    if entry_type == "IP_ADDRESSES":
        parse_network(entry)
    elif entry_type == "REGEX":
        compile_regex(entry)


def parse_lines(text: str) -> list[str]:
    """A provider's body: one entry per line; blank lines and surrounding spaces ignored."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise EntryError(f"{entry!r} is not an IP address or CIDR range") from None


def parse_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, bytes) and len(value) in (4, 16):
        return ipaddress.ip_address(value)  # IP_ADDRESS attributes travel as raw bytes
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a valid IP address") from None


def compile_regex(entry: str) -> Any:
    options = re2.Options()
    options.log_errors = False  # the error is ours to report, with the field it came from
    try:
        return re2.compile(entry, options)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise EntryError(f"{entry!r} is not a valid RE2 expression: {reason}") from None
