"""Label and field selectors, parsed and matched as a Kubernetes API server does.

    labelSelector:  app=reviews,version!=v1   tier in (web,api)   env notin (dev)   canary   !legacy
    fieldSelector:  metadata.name=reviews,metadata.namespace!=kube-system

A label requirement of `!=` or `notin` also matches objects without the label; requirements
joined by commas must all hold. Custom resources support only the two metadata field labels;
any other is refused, as on a real server. Kubernetes' own kinds support the fields their API
server supports (a kubelet lists its pods with `spec.nodeName=<node>`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from pkg.config.validation.names import is_dns1123_subdomain

FIELD_LABELS = ("metadata.name", "metadata.namespace")
# The further field labels of Kubernetes' kinds (their registries' field label conversions).
KIND_FIELD_LABELS = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Namespace": ("status.phase",),
    "Secret": ("type",),
    "Service": ("spec.clusterIP", "spec.type"),
}

# Characters that end an identifier in a label selector (besides whitespace).
_SPECIAL = "!=(),<>"
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class SelectorError(ValueError):
    """A selector that does not parse; the message says what and where."""


@dataclasses.dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        match self.operator:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "!":
                return not present
            case ">" | "<":
                if not present:
                    return False
                try:
                    have, want = int(value), int(self.values[0])
                except ValueError:
                    return False
                return have > want if self.operator == ">" else have < want
        raise AssertionError(self.operator)


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


@dataclasses.dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool  # "=" / "==" when True, "!=" when False
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) == self.equal


@dataclasses.dataclass(frozen=True)
class Selector:
    """Both selectors of one request; the empty selector matches everything."""

    labels: LabelSelector = LabelSelector()
    fields: tuple[FieldRequirement, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.labels.requirements and not self.fields

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if not self.labels.matches(meta.get("labels") or {}):
            return False
        fields = {f.field: _field_value(obj, f.field) for f in self.fields}
        return all(f.matches(fields) for f in self.fields)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


EVERYTHING = Selector()


def parse(label_selector: str = "", field_selector: str = "", kind: str = "") -> Selector:
    """`kind`: a Kubernetes kind whose own field labels are allowed too ("" for none)."""
    allowed = (*FIELD_LABELS, *KIND_FIELD_LABELS.get(kind, ()))
    return Selector(parse_labels(label_selector), parse_fields(field_selector, allowed))


# Label selectors: a small lexer and a recursive-descent parser over its tokens.


def _tokens(text: str) -> list[str]:
    """Identifiers and operators; `==`, `!=` are single tokens, whitespace separates."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith(("==", "!="), i):
            out.append(text[i : i + 2])
            i += 2
        elif ch in _SPECIAL:
            out.append(ch)
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            out.append(text[start:i])
    return out


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in _SPECIAL and token not in ("==", "!=")


class _LabelParser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokens(text)
        self._at = 0

    def _peek(self) -> str | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _next(self) -> str | None:
        token = self._peek()
        self._at += 1
        return token

    def _fail(self, found: str | None, expected: str) -> SelectorError:
        shown = "" if found is None else found
        return SelectorError(
            f"unable to parse requirement: found '{shown}', expected: {expected} "
            f"(in label selector {self._text!r})"
        )

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        if self._peek() is None:
            return LabelSelector()
        while True:
            requirements.append(self._requirement())
            token = self._next()
            if token is None:
                return LabelSelector(tuple(requirements))
            if token != ",":
                raise self._fail(token, "',' or end of string")

    def _requirement(self) -> Requirement:
        token = self._next()
        if token == "!":
            key = self._next()
            if not _is_identifier(key):
                raise self._fail(key, "identifier after '!'")
            assert key is not None
            return Requirement(_key(key), "!")
        if not _is_identifier(token) or token in ("in", "notin"):
            raise self._fail(token, "identifier")
        assert token is not None
        key = _key(token)
        operator = self._peek()
        if operator is None or operator == ",":
            return Requirement(key, "exists")
        self._next()
        if operator in ("=", "==", "!=", ">", "<"):
            value = self._peek()
            if _is_identifier(value) and value not in ("in", "notin"):
                self._next()
            else:
                value = ""  # `key=` selects the empty value
            assert value is not None
            if operator in (">", "<"):
                try:
                    int(value)
                except ValueError:
                    raise SelectorError(
                        f"unable to parse requirement: for 'gt', 'lt' operators, the value "
                        f"must be an integer, got {value!r}"
                    ) from None
            else:
                _check_value(value)
            return Requirement(key, "=" if operator == "==" else operator, (value,))
        if operator in ("in", "notin"):
            return Requirement(key, operator, self._values(operator))
        raise self._fail(operator, "'=', '==', '!=', 'in', 'notin', '>' or '<'")

    def _values(self, operator: str) -> tuple[str, ...]:
        token = self._next()
        if token != "(":
            raise self._fail(token, "'(' after 'in' or 'notin'")
        values: list[str] = []
        expect_value = True
        while True:
            token = self._next()
            if token == ")":
                if expect_value and values:
                    values.append("")  # `(a,)`: a trailing empty value
                break
            if token == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if not expect_value or not _is_identifier(token):
                raise self._fail(token, "',' or ')'" if not expect_value else "a value")
            assert token is not None
            values.append(token)
            expect_value = False
        if not values:
            raise SelectorError(
                f"unable to parse requirement: for '{operator}' the set of values must not be empty"
            )
        for value in values:
            _check_value(value)
        return tuple(values)


def _key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if (slash and not is_dns1123_subdomain(prefix)) or not (
        0 < len(name) <= 63 and _LABEL_NAME.match(name)
    ):
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r}: a label key is a name "
            "of at most 63 letters, digits, '-', '_' or '.' (starting and ending with a letter "
            "or digit), with an optional DNS subdomain prefix and '/'"
        )
    return key


def _check_value(value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise SelectorError(
            f"unable to parse requirement: invalid label value {value!r}: at most 63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )


def parse_labels(text: str) -> LabelSelector:
    return _LabelParser(text).parse()


# Field selectors: `field=value` terms; `\,`, `\=` and `\\` escape inside values.


def parse_fields(
    text: str, allowed: tuple[str, ...] = FIELD_LABELS
) -> tuple[FieldRequirement, ...]:
    requirements = []
    for term in _split_unescaped(text, ","):
        if not term.strip():
            if text.strip():
                raise SelectorError(f"invalid selector: {text!r}; empty term")
            continue
        field, equal, value = _field_term(text, term)
        if field not in allowed:
            shown = ", ".join(f'"{a}"' for a in allowed)
            raise SelectorError(f'"{field}" is not a known field selector: only {shown}')
        requirements.append(FieldRequirement(field, equal, value))
    return tuple(requirements)


def _field_term(text: str, term: str) -> tuple[str, bool, str]:
    """(field, equal, value) of `field=value`, `field==value` or `field!=value`."""
    for operator, equal in (("!=", False), ("==", True), ("=", True)):
        index = _find_unescaped(term, operator)
        if index >= 0:
            return term[:index].strip(), equal, _unescape(term[index + len(operator) :])
    raise SelectorError(f"invalid selector: {text!r}; can't understand {term!r}")


def _find_unescaped(text: str, needle: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(needle, i):
            return i
        i += 1
    return -1


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
        elif text[i] == separator:
            parts.append("".join(current))
            current = []
            i += 1
        else:
            current.append(text[i])
            i += 1
    parts.append("".join(current))
    return parts if text else []


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
