"""The expression tree the parser builds and the checker and compiler read.

Nodes are frozen dataclasses. Each carries the position of its principal token (the operator
of a unary or binary expression, the `[` of an index, the name of a call or attribute, the
first character of a literal); positions take no part in equality, so two trees compare equal
when they mean the same expression, however it was spaced or parenthesized.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from pkg.lang.errors import Position
from pkg.lang.types import ValueType


@dataclasses.dataclass(frozen=True, slots=True)
class Literal:
    """A constant: STRING (str), INT64 (int >= 0), DOUBLE (float >= 0) or BOOL.

    A negative number is a Unary `-` over a literal, as in Go.
    """

    value: str | int | float | bool
    type: ValueType
    pos: Position | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Attribute:
    """An attribute of the bag, by its dotted name (`source.labels`)."""

    name: str
    pos: Position | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Index:
    """`target[key]`: a STRING_MAP looked up by a STRING."""

    target: Node
    key: Node
    pos: Position | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Unary:
    """`!operand` or `-operand`."""

    op: str
    operand: Node
    pos: Position | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Binary:
    """`left op right` for op in == != < <= > >= && || | +."""

    op: str
    left: Node
    right: Node
    pos: Position | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """`name(args)`, or the method call `target.name(args)` when target is set."""

    name: str
    args: tuple[Node, ...]
    target: Node | None = None
    pos: Position | None = dataclasses.field(default=None, compare=False, repr=False)


Node = Literal | Attribute | Index | Unary | Binary | Call

UNARY_OPS = ("!", "-")
BINARY_OPS = ("==", "!=", "<", "<=", ">", ">=", "&&", "||", "|", "+")

# Go's binary operator precedence, which CEXL keeps since Istio parses it with Go's parser:
# `|` binds like `+`, tighter than comparisons, so `a == b | c` is `a == (b | c)`.
PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "+": 4,
    "|": 4,
}


def children(node: Node) -> tuple[Node, ...]:
    match node:
        case Index(target, key):
            return (target, key)
        case Unary(_, operand):
            return (operand,)
        case Binary(_, left, right):
            return (left, right)
        case Call(_, args, target):
            return args if target is None else (target, *args)
    return ()


def walk(node: Node) -> Iterator[Node]:
    """`node` and every node below it, parents before children, left to right."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def attribute_names(node: Node) -> frozenset[str]:
    """The names of every attribute the expression may read."""
    return frozenset(n.name for n in walk(node) if isinstance(n, Attribute))
