"""Diagnostic messages: Istio's message types (messages.yaml), messages, and how they print.

A message is a type (code, level, template) with its arguments and the resource it is
about. It prints as Istio's do:

    Error [IST0101] (VirtualService reviews.default samples/x.yaml:12) Referenced host+subset in destinationrule not found: "reviews+v9"

the level, the code, the resource's kind, name.namespace and file:line (the line of the
field at fault where the analyzer names one, else of the document), then the template
filled in with Go's formatting of the arguments, since Istio's templates use Go's verbs.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import functools
import json
import pathlib
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from istioctl.analyze.model import Origin

_MESSAGES = pathlib.Path(__file__).with_name("messages.yaml")
DOCS = "https://istio.io/latest/docs/reference/config/analysis"


class Level(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> Level:
        return cls[text.upper()]


@dataclasses.dataclass(frozen=True)
class MessageType:
    name: str
    code: str
    level: Level
    description: str
    template: str
    args: tuple[str, ...]


@functools.cache
def catalog() -> dict[str, MessageType]:
    """Every message type, by name."""
    data = yaml.safe_load(_MESSAGES.read_text())
    types = {}
    for entry in data["messages"]:
        types[entry["name"]] = MessageType(
            name=entry["name"],
            code=entry["code"],
            level=Level.parse(entry["level"]),
            description=entry["description"],
            template=entry["template"],
            args=tuple(entry.get("args", ())),
        )
    return types


def codes() -> set[str]:
    return {t.code for t in catalog().values()}


@dataclasses.dataclass(frozen=True)
class Message:
    type: MessageType
    args: tuple[Any, ...]
    origin: Origin | None
    path: str = ""  # the field at fault, for its line

    @property
    def text(self) -> str:
        return go_format(self.type.template, self.args)

    def origin_text(self) -> str:
        """` (VirtualService reviews.default file.yaml:12)`, or "" without a resource."""
        if self.origin is None:
            return ""
        reference = self.origin.reference(self.path)
        return f" ({self.origin.friendly_name()}{' ' + reference if reference else ''})"

    def render(self, *, color: bool = False) -> str:
        level = str(self.type.level)
        if color and self.type.level in _COLORS:
            level = f"{_COLORS[self.type.level]}{level}\033[0m"
        return f"{level} [{self.type.code}]{self.origin_text()} {self.text}"

    def to_json(self) -> dict[str, Any]:
        """Istio's structured form; keys sorted, as Go marshals a map."""
        data: dict[str, Any] = {
            "code": self.type.code,
            "documentationUrl": f"{DOCS}/{self.type.code.lower()}/?ref=istioctl-analyze",
            "level": str(self.type.level),
            "message": self.text,
        }
        if self.origin is not None:
            data["origin"] = self.origin.friendly_name()
            reference = self.origin.reference(self.path)
            if reference:
                data["reference"] = reference
        return dict(sorted(data.items()))

    def sort_key(self) -> tuple[str, str, str]:
        return (self.origin.friendly_name() if self.origin else "", self.type.code, self.render())


def sorted_unique(messages: Iterable[Message]) -> list[Message]:
    """By resource, then code, then text; a message reported twice is printed once."""
    seen: set[str] = set()
    unique = []
    for message in sorted(messages, key=Message.sort_key):
        rendered = message.render()
        if rendered not in seen:
            seen.add(rendered)
            unique.append(message)
    return unique


def render_all(messages: Sequence[Message], output: str, *, color: bool = False) -> str:
    """The messages as `log` lines, or Istio's JSON (tab-indented) or YAML list."""
    if output == "json":
        return json.dumps([m.to_json() for m in messages], indent="\t") + "\n"
    if output == "yaml":
        return yaml.safe_dump([m.to_json() for m in messages], sort_keys=True)
    return "".join(m.render(color=color) + "\n" for m in messages)


_COLORS = {Level.WARNING: "\033[33m", Level.ERROR: "\033[1;31m"}


# Suppression: `--suppress CODE=RESOURCE` and the galley.istio.io/analyze-suppress annotation.

SUPPRESS_ANNOTATION = "galley.istio.io/analyze-suppress"


@dataclasses.dataclass(frozen=True)
class Suppression:
    code: str
    resource: str  # a friendly name, `*` matching any run of characters

    @classmethod
    def parse(cls, text: str) -> Suppression:
        code, sep, resource = text.partition("=")
        if not sep or not code or not resource or "=" in resource:
            raise ValueError(
                f"{text} is not a valid suppression value. See istioctl analyze --help"
            )
        return cls(code, resource)

    def matches(self, message: Message) -> bool:
        if message.type.code != self.code or message.origin is None:
            return False
        name = message.origin.friendly_name()
        if "*" in self.resource:
            return fnmatch.fnmatchcase(name, self.resource.replace("[", "[[]"))
        return name == self.resource


def suppressed(message: Message, suppressions: Sequence[Suppression]) -> bool:
    if any(s.matches(message) for s in suppressions):
        return True
    if message.origin is None:
        return False
    listed = message.origin.annotations.get(SUPPRESS_ANNOTATION, "")
    codes = {c.strip() for c in listed.split(",") if c.strip()}
    return "*" in codes or message.type.code in codes


# Go's fmt verbs, as Istio's templates use them.

_VERB = re.compile(r"%([%svqdt])")


def go_format(template: str, args: Sequence[Any]) -> str:
    values = iter(args)

    def one(match: re.Match[str]) -> str:
        verb = match.group(1)
        if verb == "%":
            return "%"
        value = next(values, None)
        if verb == "q":
            return _go_quote(value)
        if verb == "d":
            return str(int(value)) if isinstance(value, int | float) else _go_value(value)
        return _go_value(value)

    return _VERB.sub(one, template)


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def _go_quote(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + " ".join(_go_quote(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
