"""An expression tree back to CEXL text, with only the parentheses its meaning needs.

`parse(format_expression(tree)) == tree` for any tree the parser can produce; tests hold
the parser to that.
"""

from __future__ import annotations

from pkg.lang.ast import PRECEDENCE, Attribute, Binary, Call, Index, Literal, Node, Unary
from pkg.lang.types import ValueType

_UNARY = 5
_POSTFIX = 6  # indexing, calls, names and literals
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(value: str) -> str:
    """`value` as a Go interpreted string literal."""
    out = ['"']
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif 0xD800 <= ord(ch) < 0xE000:
            raise ValueError(f"string holds a lone surrogate {ch!r}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_expression(node: Node) -> str:
    match node:
        case Literal(value, ValueType.STRING):
            return quote(value)  # type: ignore[arg-type]
        case Literal(value, ValueType.BOOL):
            return "true" if value else "false"
        case Literal(value, ValueType.DOUBLE):
            return repr(float(value))
        case Literal(value):
            return str(value)
        case Attribute(name):
            return name
        case Index(target, key):
            return f"{_operand(target)}[{format_expression(key)}]"
        case Unary(op, operand):
            text = format_expression(operand)
            if _precedence(operand) < _UNARY or (op == "-" and text.startswith("-")):
                text = f"({text})"  # `--x` would be Go's decrement operator
            return f"{op}{text}"
        case Binary(op, left, right):
            level = PRECEDENCE[op]
            left_text = _parenthesized(left, _precedence(left) < level)
            right_text = _parenthesized(right, _precedence(right) <= level)  # left-associative
            return f"{left_text} {op} {right_text}"
        case Call(name, args, target):
            arguments = ", ".join(format_expression(a) for a in args)
            if target is None:
                return f"{name}({arguments})"
            return f"{_operand(target)}.{name}({arguments})"
    raise TypeError(f"not an expression node: {node!r}")


def _operand(node: Node) -> str:
    """The target of `[...]` or `.method(...)`."""
    # A number followed by "." lexes as a float; `true.f()` reads as a method of an attribute.
    needs = _precedence(node) < _POSTFIX or (
        isinstance(node, Literal) and node.type is not ValueType.STRING
    )
    return _parenthesized(node, needs)


def _parenthesized(node: Node, needed: bool) -> str:
    text = format_expression(node)
    return f"({text})" if needed else text


def _precedence(node: Node) -> int:
    if isinstance(node, Binary):
        return PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return _UNARY
    return _POSTFIX
