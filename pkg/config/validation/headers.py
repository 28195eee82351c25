"""HTTP header names and values as Istio checks them before they reach Envoy.

Header values a route sets are Envoy format strings: `%VAR%` and `%VAR(args)%` are
substitutions, `%%` is a literal percent sign, and anything else with a `%` makes Envoy refuse
the whole route configuration (header_parser.cc); so a lone `%` is refused here, with the
reason Envoy would give.
"""

from __future__ import annotations

import re

_TCHARS = r"!#$%&'*+\-.^_`|~A-Za-z0-9"
_HEADER_NAME = re.compile(f"^[{_TCHARS}]+$")
_STRICT_HEADER_NAME = re.compile(r"^[-_A-Za-z0-9]+$")
# Control characters other than tab end a header line early.
_HEADER_VALUE_CHARS = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]*$")
PSEUDO_HEADERS = frozenset((":method", ":scheme", ":authority", ":path", ":status"))
JWT_CLAIM_PREFIX = "@request.auth.claims"


def jwt_claims(name: str) -> list[str] | None:
    """The claim path of a `@request.auth.claims.a.b` (or `[a][b]`) header name, else None."""
    if not name.lower().startswith(JWT_CLAIM_PREFIX):
        return None
    rest = name[len(JWT_CLAIM_PREFIX) :]
    if rest.startswith(".") and len(rest) > 1:
        return rest[1:].split(".")
    if rest.startswith("[") and rest.endswith("]") and len(rest) > 2:
        return rest[1:-1].split("][")
    return None


def check_match_name(name: str) -> str | None:
    """A header a route matches on: a token, a pseudo-header, or a JWT claim."""
    if not name:
        return "header name cannot be empty"
    if jwt_claims(name) is not None or name in PSEUDO_HEADERS:
        return None
    if not _HEADER_NAME.match(name):
        return f"header name {name} is not a valid header name"
    return None


def check_strict_name(name: str) -> str | None:
    """Names Istio writes into requests itself (outputClaimToHeaders)."""
    if not name:
        return "header name cannot be empty"
    if not _STRICT_HEADER_NAME.match(name):
        return f"header name {name} is not a valid header name"
    return None


def check_cors_name(name: str) -> str | None:
    if not name:
        return "header name cannot be empty"
    if name != "*" and not _HEADER_NAME.match(name):
        return f"header name {name} is not a valid header name"
    return None


def _is_internal(name: str) -> bool:
    return name.startswith(":") or name.lower() == "host"


def is_authority(name: str) -> bool:
    return name.lower() in (":authority", "host")


def check_request_set_name(name: str) -> str | None:
    """A request header a route adds or sets: the authority may be rewritten this way."""
    if not name:
        return "header name cannot be empty"
    if _is_internal(name) and not is_authority(name):
        return f'invalid header "{name}": header cannot have ":" prefix'
    return None


def check_operation_name(name: str) -> str | None:
    """A request header a route removes, or a response header it adds, sets or removes."""
    if not name:
        return "header name cannot be empty"
    if name.lower() == "host":
        return f'invalid header "{name}": cannot set Host header'
    if _is_internal(name):
        return f'invalid header "{name}": header cannot have ":" prefix'
    return None


def check_value(value: str) -> str | None:
    """Why Envoy would refuse `value` as a header value it adds or sets, or None."""
    if not _HEADER_VALUE_CHARS.match(value):
        return f"header value configuration {value!r} is invalid"
    problem = _format_problem(value)
    return f"header value configuration: {problem}" if problem else None


def _format_problem(value: str) -> str | None:
    """Walks `value` as Envoy's header formatter does: literal text and %...% substitutions."""
    state, pos = "literal", 0
    while pos < len(value):
        char = value[pos]
        at_end = pos + 1 == len(value)
        if state == "literal":
            if char == "%":
                if at_end:
                    return "invalid header configuration. Un-escaped %"
                if value[pos + 1] == "%":
                    pos += 1  # `%%` is one literal percent sign
                else:
                    state = "name"
        elif state == "name":
            if char == "%":
                state = "literal"
            elif char == "(":
                state = "args"
        elif state == "args":  # `%VAR(` then a JSON array, or bare text up to `)`
            if char == "[":
                state = "expect-string"
            elif char != " ":
                state = "string"
        elif state == "expect-string":
            if char == '"':
                state = "string"
            elif char != " ":
                return "invalid header configuration. Expecting '\"'"
        elif state == "string":
            if char == "\\":
                if at_end:
                    return "invalid header configuration. Un-terminated backslash in JSON string"
                pos += 1
            elif char == ")":
                state = "expect-end"
            elif char == '"':
                state = "after-string"
        elif state == "after-string":
            if char == ",":
                state = "expect-string"
            elif char == "]":
                state = "expect-close"
            elif char != " ":
                return "invalid header configuration. Expecting ',', ']', or whitespace"
        elif state == "expect-close":
            if char == ")":
                state = "expect-end"
            elif char != " ":
                return "invalid header configuration. Expecting ')' or whitespace"
        elif state == "expect-end":
            if char == "%":
                state = "literal"
            elif char != " ":
                return "invalid header configuration. Expecting '%' or whitespace after"
        pos += 1
    if state != "literal":
        return f"invalid header configuration. Un-terminated variable expression '{value}'"
    return None
