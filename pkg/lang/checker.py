"""Type checking of an expression tree against an attribute vocabulary.

The result is a typed tree: each node with its type and its typed children, which is what
the compiler translates. Istio's rules:

- attributes have their manifest type; literals are STRING, INT64, DOUBLE or BOOL;
- `==` `!=` want two operands of one type (not STRING_MAP); `<` `<=` `>` `>=` want two
  STRING, INT64, DOUBLE, TIMESTAMP or DURATION operands of one type; `&&` `||` `!` want
  BOOL; unary `-` wants INT64 or DOUBLE; `+` adds two INT64s or DOUBLEs or joins two STRINGs;
- `a | b` wants one type on both sides, and has it;
- `m[k]` wants a STRING_MAP and a STRING, and is a STRING;
- a string literal that reads as a Go duration (`"10s"`) is a DURATION where the other side
  of a comparison, a `|` or a `conditional` is one (`"10s" == response.duration`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from pkg.lang.ast import Attribute, Binary, Call, Index, Literal, Node, Unary
from pkg.lang.errors import LangError
from pkg.lang.functions import FUNCTIONS, GENERIC
from pkg.lang.types import ValueType, parse_duration

T = ValueType
_ORDERED = frozenset({T.STRING, T.INT64, T.DOUBLE, T.TIMESTAMP, T.DURATION})
_ADDABLE = frozenset({T.STRING, T.INT64, T.DOUBLE})
_NUMERIC = frozenset({T.INT64, T.DOUBLE})


@dataclasses.dataclass(frozen=True, slots=True)
class Typed:
    """A node with its type; `children` are its operands typed, in the order of ast.children."""

    node: Node
    type: ValueType
    children: tuple[Typed, ...] = ()


def check(node: Node, types: Mapping[str, ValueType], *, want: ValueType | None = None) -> Typed:
    """The typed tree of `node`; raises LangError naming the position and the problem.

    With `want`, the expression must have that type (a duration literal becomes DURATION).
    """
    typed = _Checker(types).infer(node)
    if want is not None and typed.type is not want:
        coerced = _as_duration(typed) if want is ValueType.DURATION else None
        if coerced is None:
            raise LangError(f"expression is {typed.type.name}, want {want.name}")
        typed = coerced
    return typed


def _as_duration(typed: Typed) -> Typed | None:
    """`typed` retyped as DURATION if it is a duration literal, or a `|` or `conditional`
    choosing between such literals (and DURATION values); else None."""
    if typed.type is T.DURATION:
        return typed
    if typed.type is not T.STRING:
        return None
    node = typed.node
    if isinstance(node, Literal):
        return Typed(node, T.DURATION) if parse_duration(node.value) is not None else None  # type: ignore[arg-type]
    if isinstance(node, Binary) and node.op == "|":
        left, right = (_as_duration(c) for c in typed.children)
        return Typed(node, T.DURATION, (left, right)) if left and right else None
    if isinstance(node, Call) and node.name == "conditional" and node.target is None:
        condition, yes, no = typed.children
        yes_duration, no_duration = _as_duration(yes), _as_duration(no)
        if yes_duration and no_duration:
            return Typed(node, T.DURATION, (condition, yes_duration, no_duration))
        return None
    return None


def _unify(left: Typed, right: Typed) -> tuple[Typed, Typed]:
    """Both sides of a comparison, `|` or conditional, with duration literals retyped to
    match a DURATION on the other side."""
    if left.type is T.DURATION and right.type is T.STRING:
        right = _as_duration(right) or right
    elif right.type is T.DURATION and left.type is T.STRING:
        left = _as_duration(left) or left
    return left, right


def _names(types: tuple[ValueType, ...]) -> str:
    return ", ".join(t.name for t in types)


class _Checker:
    def __init__(self, types: Mapping[str, ValueType]) -> None:
        self.types = types

    def infer(self, node: Node) -> Typed:
        match node:
            case Literal():
                return Typed(node, node.type)
            case Attribute(name):
                found = self.types.get(name)
                if found is None:
                    raise LangError(f'unknown attribute "{name}"', node.pos)
                if found is T.VALUE_TYPE_UNSPECIFIED:
                    raise LangError(f'attribute "{name}" has no value type', node.pos)
                return Typed(node, T(found))
            case Index(target, key):
                typed_target, typed_key = self.infer(target), self.infer(key)
                if typed_target.type is not T.STRING_MAP or typed_key.type is not T.STRING:
                    raise LangError(
                        f"cannot index {typed_target.type.name} with {typed_key.type.name}: "
                        "want STRING_MAP[STRING]",
                        node.pos,
                    )
                return Typed(node, T.STRING, (typed_target, typed_key))
            case Unary(op, operand):
                return self.unary(node, op, self.infer(operand))
            case Binary(op, left, right):
                return self.binary(node, op, self.infer(left), self.infer(right))
            case Call():
                return self.call(node)
        raise TypeError(f"not an expression node: {node!r}")

    def unary(self, node: Unary, op: str, operand: Typed) -> Typed:
        wanted, names = ({T.BOOL}, "BOOL") if op == "!" else (_NUMERIC, "INT64 or DOUBLE")
        if operand.type not in wanted:
            raise LangError(f"{op} wants {names}, got {operand.type.name}", node.pos)
        return Typed(node, operand.type, (operand,))

    def binary(self, node: Binary, op: str, left: Typed, right: Typed) -> Typed:
        if op in ("&&", "||"):
            if left.type is not T.BOOL or right.type is not T.BOOL:
                raise self.mismatch(node, left, right, ": wants BOOL operands")
            return Typed(node, T.BOOL, (left, right))
        left, right = _unify(left, right)
        if left.type is not right.type:
            hint = ": both sides must have one type" if op == "|" else ""
            raise self.mismatch(node, left, right, hint)
        kind = left.type
        if op in ("==", "!="):
            if kind is T.STRING_MAP:
                raise self.mismatch(node, left, right, ": string maps cannot be compared")
            return Typed(node, T.BOOL, (left, right))
        if op == "|":
            return Typed(node, kind, (left, right))
        if op == "+":
            if kind not in _ADDABLE:
                raise self.mismatch(node, left, right, ": wants two STRING, INT64 or DOUBLE")
            return Typed(node, kind, (left, right))
        if kind not in _ORDERED:
            raise self.mismatch(
                node, left, right, ": wants two STRING, INT64, DOUBLE, TIMESTAMP or DURATION"
            )
        return Typed(node, T.BOOL, (left, right))

    @staticmethod
    def mismatch(node: Binary, left: Typed, right: Typed, hint: str = "") -> LangError:
        return LangError(f"{node.op} of {left.type.name} and {right.type.name}{hint}", node.pos)

    def call(self, node: Call) -> Typed:
        name = node.name
        target = None if node.target is None else self.infer(node.target)
        args = tuple(self.infer(a) for a in node.args)
        got = tuple(a.type for a in args)
        if name in GENERIC and target is None:
            return self.generic(node, args, got)
        function = FUNCTIONS.get(name)
        if function is None:
            kind = "function" if target is None else "method"
            raise LangError(f'unknown {kind} "{name}"', node.pos)
        if function.method and target is None:
            raise LangError(
                f"{name} is a method: call it as value.{name}({_names(function.params[1:])})",
                node.pos,
            )
        if not function.method and target is not None:
            raise LangError(f"{name} is a function, not a method: call it as {name}(...)", node.pos)
        if target is not None:
            if (target.type, *got) != function.params:
                raise LangError(
                    f"{name}() wants {function.signature()}, "
                    f"got {target.type.name}.{name}({_names(got)})",
                    node.pos,
                )
            return Typed(node, function.result, (target, *args))
        if got != function.params:
            raise LangError(
                f"{name}() wants ({_names(function.params)}), got ({_names(got)})", node.pos
            )
        return Typed(node, function.result, args)

    def generic(self, node: Call, args: tuple[Typed, ...], got: tuple[ValueType, ...]) -> Typed:
        if node.name == "size":
            if got not in ((T.STRING,), (T.STRING_MAP,)):
                raise LangError(
                    f"size() wants (STRING) or (STRING_MAP), got ({_names(got)})", node.pos
                )
            return Typed(node, T.INT64, args)
        # conditional(BOOL, T, T) -> T
        if len(args) == 3:
            condition, yes, no = args
            yes, no = _unify(yes, no)
            if condition.type is T.BOOL and yes.type is no.type:
                return Typed(node, yes.type, (condition, yes, no))
            got = (condition.type, yes.type, no.type)
        raise LangError(f"conditional() wants (BOOL, T, T), got ({_names(got)})", node.pos)
