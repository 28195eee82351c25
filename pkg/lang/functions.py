"""The functions and methods CEXL expressions may call, with their signatures.

Monomorphic ones live in FUNCTIONS. Two are generic and typed by the checker itself:
`conditional(BOOL, T, T) -> T` (only the chosen branch is evaluated) and
`size(STRING | STRING_MAP) -> INT64` (a string's size is its UTF-8 length in bytes, as Go's
len()). A method's target is its first parameter: `"re".matches(s)` calls matches("re", s).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Mapping
from typing import Any

import re2

from pkg.lang import values
from pkg.lang.errors import EvalError
from pkg.lang.types import ValueType

S, B = ValueType.STRING, ValueType.BOOL

GENERIC = ("conditional", "size")


@dataclasses.dataclass(frozen=True)
class Function:
    name: str
    params: tuple[ValueType, ...]  # for a method, the target's type comes first
    result: ValueType
    impl: Callable[..., Any]
    method: bool = False

    def signature(self) -> str:
        """How the error messages show what the function wants: `match(STRING, STRING)`."""
        params = self.params[1:] if self.method else self.params
        call = f"{self.name}({', '.join(p.name for p in params)})"
        return f"{self.params[0].name}.{call}" if self.method else call


def match(text: str, pattern: str) -> bool:
    """Istio's glob: a trailing `*` matches a prefix, a leading `*` a suffix, else equality."""
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return text.endswith(pattern[1:])
    return text == pattern


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is reported to the caller, not to stderr


@functools.lru_cache(maxsize=512)
def regex(pattern: str) -> Any:
    """The compiled RE2 pattern (Go's regexp is RE2 too); raises EvalError if malformed."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise EvalError(f"invalid regular expression {pattern!r}: {reason}") from None


def matches(pattern: str, text: str) -> bool:
    """`"re".matches(s)`: whether the regular expression occurs anywhere in `s`."""
    return regex(pattern).search(text) is not None


def starts_with(text: str, prefix: str) -> bool:
    return text.startswith(prefix)


def ends_with(text: str, suffix: str) -> bool:
    return text.endswith(suffix)


def conditional_string(condition: bool, yes: str, no: str) -> str:
    return yes if condition else no


_EMPTY_MAP: Mapping[str, str] = types.MappingProxyType({})


def empty_string_map() -> Mapping[str, str]:
    return _EMPTY_MAP


def to_lower(text: str) -> str:
    return text.lower()


def size(value: str | Mapping[str, str]) -> int:
    return len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else len(value)


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("match", (S, S), B, match),
        Function("ip", (S,), ValueType.IP_ADDRESS, values.ip),
        Function("timestamp", (S,), ValueType.TIMESTAMP, values.timestamp),
        Function("email", (S,), ValueType.EMAIL_ADDRESS, values.email_address),
        Function("dnsName", (S,), ValueType.DNS_NAME, values.dns_name),
        Function("uri", (S,), ValueType.URI, values.uri),
        Function("conditionalString", (B, S, S), S, conditional_string),
        Function("emptyStringMap", (), ValueType.STRING_MAP, empty_string_map),
        Function("toLower", (S,), S, to_lower),
        Function("startsWith", (S, S), B, starts_with, method=True),
        Function("endsWith", (S, S), B, ends_with, method=True),
        Function("matches", (S, S), B, matches, method=True),
    )
}
