"""Reading YAML streams the way Kubernetes reads them, without ever raising anything but YAMLError.

PyYAML's SafeLoader raises ValueError, KeyError, AttributeError or RecursionError on input users
really write (`!!int abc`, `!!bool maybe`, `!!timestamp 2020-13-45`, a 5000-digit integer, a
list nested 100000 deep), and spends exponential time on an alias bomb. This loader differs:

- a scalar it cannot construct becomes an `Invalid` value in place, so the validator reports it
  with its field path (`spec.http[0].route[0].weight: !!int 'abc' is not an integer`);
- timestamps stay strings, as in kubectl (go-yaml hands `2020-01-01` to JSON as a string), and
  `!!binary` stays its base64 text, which is what proto3 JSON wants for bytes;
- nesting deeper than MAX_DEPTH, a document that aliases expand past MAX_NODES, and an alias
  to itself are YAMLErrors with their position.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import yaml
from yaml import nodes
from yaml.composer import ComposerError

MAX_DEPTH = 64  # Istio's deepest specs nest about 12 levels
MAX_NODES = 1_000_000  # after alias expansion; Kubernetes bounds aliases the same way
MAX_INT_DIGITS = 4300  # Python's own limit for converting decimal text (sys.int_info)

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BASE10 = {
    "tag:yaml.org,2002:int": re.compile(
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+)$""",
        re.X,
    ),
    # go-yaml's floats: an exponent needs no dot and no sign (`1e3`, `1.0e3`); PyYAML's do.
    "tag:yaml.org,2002:float": re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
}


@dataclasses.dataclass(frozen=True)
class Invalid:
    """A scalar that has no value: what was written and why it is not a value."""

    text: str
    reason: str
    line: int  # 1-based
    column: int  # 1-based

    def describe(self) -> str:
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"{shown!r} {self.reason} (line {self.line}, column {self.column})"


class DepthError(ComposerError):
    """A document nested deeper than MAX_DEPTH; `path` is where (abridged)."""

    def __init__(self, path: list[str], mark: yaml.Mark) -> None:
        self.path = ("".join(path[:12]) + ("..." if len(path) > 12 else "")).lstrip(".")
        super().__init__(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)


class Loader(yaml.SafeLoader):
    """SafeLoader with Kubernetes' scalars, bounded composition and no exceptions but YAMLError."""

    # Implicit timestamps and base-60 numbers (`1:30`) resolve to strings, as in kubectl
    # (go-yaml has neither); each first character's resolvers are copied, so SafeLoader itself
    # is left as it was.
    yaml_implicit_resolvers: ClassVar[dict] = {
        first: [(tag, _BASE10.get(tag, regexp)) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str] = []

    def compose_node(self, parent: nodes.Node | None, index: Any) -> nodes.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            # A collection is anchored before its children are composed and sized after:
            # an alias to one without a size is an alias to itself (an endless document).
            if target is not None and not hasattr(target, "expanded"):
                raise ComposerError(
                    None, None, f"alias *{event.anchor} refers to itself", event.start_mark
                )
            return super().compose_node(parent, index)
        self._path.append(_path_part(parent, index))
        if len(self._path) > MAX_DEPTH:
            raise DepthError(self._path, self.peek_event().start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._path.pop()
        node.expanded = _expanded_size(node)  # type: ignore[attr-defined]
        if node.expanded > MAX_NODES:  # type: ignore[attr-defined]
            raise ComposerError(
                None,
                None,
                f"the document expands to more than {MAX_NODES} values through aliases",
                node.start_mark,
            )
        return node


def _path_part(parent: nodes.Node | None, index: Any) -> str:
    if parent is None:
        return ""  # the document itself
    if isinstance(index, int):
        return f"[{index}]"
    if isinstance(index, nodes.ScalarNode):
        return f".{index.value}"
    return ".<key>"


def _expanded_size(node: nodes.Node) -> int:
    if isinstance(node, nodes.ScalarNode):
        return 1
    if isinstance(node, nodes.SequenceNode):
        return 1 + sum(getattr(child, "expanded", 1) for child in node.value)
    return 1 + sum(
        getattr(key, "expanded", 1) + getattr(value, "expanded", 1) for key, value in node.value
    )


def _invalid(node: nodes.Node, reason: str) -> Invalid:
    text = node.value if isinstance(node.value, str) else ""
    return Invalid(text, reason, node.start_mark.line + 1, node.start_mark.column + 1)


def _construct_int(loader: Loader, node: nodes.ScalarNode) -> int | Invalid:
    digits = len(str(node.value).lstrip("+-"))
    if digits > MAX_INT_DIGITS:
        return _invalid(node, f"is an integer of {digits} digits (at most {MAX_INT_DIGITS})")
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except (ValueError, IndexError):
        return _invalid(node, "is not an integer")


def _construct_float(loader: Loader, node: nodes.ScalarNode) -> float | Invalid:
    try:
        return yaml.SafeLoader.construct_yaml_float(loader, node)
    except (ValueError, IndexError, OverflowError):
        return _invalid(node, "is not a number")


def _construct_bool(loader: Loader, node: nodes.ScalarNode) -> bool | Invalid:
    try:
        return yaml.SafeLoader.construct_yaml_bool(loader, node)
    except (KeyError, AttributeError):
        return _invalid(node, "is not a boolean (true/false, yes/no, on/off)")


def _construct_timestamp(loader: Loader, node: nodes.ScalarNode) -> str | Invalid:
    try:
        yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, AttributeError, OverflowError):
        return _invalid(node, "is not a timestamp (e.g. 2001-12-14T21:59:43Z)")
    return str(node.value)


def _construct_binary(loader: Loader, node: nodes.ScalarNode) -> str | Invalid:
    text = loader.construct_scalar(node)
    try:
        base64.b64decode("".join(text.split()).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return _invalid(node, "is not base64 data")
    return "".join(text.split())


def _no_json_form(loader: Loader, node: nodes.Node) -> Invalid:
    kind = node.tag.rpartition(":")[2]
    return _invalid(node, f"is a YAML !!{kind}, which has no JSON form")


def _unknown_tag(loader: Loader, node: nodes.Node) -> Invalid:
    return _invalid(node, f"has the tag {node.tag!r}, which is not a YAML core type")


for _tag, _constructor in (
    ("tag:yaml.org,2002:int", _construct_int),
    ("tag:yaml.org,2002:float", _construct_float),
    ("tag:yaml.org,2002:bool", _construct_bool),
    (_TIMESTAMP, _construct_timestamp),
    ("tag:yaml.org,2002:binary", _construct_binary),
    ("tag:yaml.org,2002:set", _no_json_form),
    ("tag:yaml.org,2002:omap", _no_json_form),
    ("tag:yaml.org,2002:pairs", _no_json_form),
    (None, _unknown_tag),
):
    Loader.add_constructor(_tag, _constructor)


class Dumper(yaml.SafeDumper):
    """Writes what any YAML reader reads back unchanged: a string that Loader (`1e3`) or
    PyYAML's SafeLoader (`2020-01-01`, `1:30`) would take for something else is quoted."""

    yaml_implicit_resolvers: ClassVar[dict] = {
        first: resolvers + Loader.yaml_implicit_resolvers.get(first, [])
        for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
    }


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=Dumper, sort_keys=False)


def dump_all(documents: list[Any]) -> str:
    return yaml.dump_all(documents, Dumper=Dumper, sort_keys=False)


def documents(text: str) -> Iterator[Any]:
    """Each document of a stream in turn; raises yaml.YAMLError at the first that does not parse.

    Documents before the bad one are yielded first, so the caller knows which one failed.
    """
    loader = Loader(text)
    try:
        while loader.check_data():
            yield loader.get_data()
            loader.anchors = {}
    finally:
        loader.dispose()
