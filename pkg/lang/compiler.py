"""Typed expression trees to nested Python closures, evaluated against attribute bags.

`compile_expression` parses, type-checks and translates an expression once; evaluating it
then calls a closure per node and never looks at the tree again. Closures come in two
modes, after Istio's compiler:

- strict: yields a value or raises EvalError (an absent attribute, a missing map key);
- optional (the left side of `|`, and both sides inside one): yields MISSING when an
  attribute or map key is absent, so that `|` falls through to its right side. Only
  attributes, map indexing and `|` itself are optional; any other node inside a `|`
  evaluates strictly, as in Istio (`(a + b) | "x"` fails when `a` is absent).

Subtrees that read no attribute are evaluated at compile time; one that cannot be (such as
`ip("10.0.0")`, or a malformed regular expression) is a compile-time LangError.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from pkg.lang import ast, functions, values
from pkg.lang.ast import Attribute, Binary, Call, Index, Literal, Unary
from pkg.lang.checker import Typed, check
from pkg.lang.errors import EvalError, LangError
from pkg.lang.parser import parse
from pkg.lang.types import ValueType, parse_duration, wrap_int64

T = ValueType
Closure = Callable[[Any], Any]


class Bag(Protocol):
    """What evaluation reads: attributes, and keys of string-map attributes.

    `map_value` serves `attr["key"]` when the map is an attribute, so that a bag can record
    which keys a decision depended on (Mixer's referenced attributes).
    """

    def get(self, name: str) -> tuple[Any, bool]: ...

    def map_value(self, name: str, key: str) -> tuple[str, bool]: ...


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # what an optional closure yields for an absent value


class _EmptyBag:
    """The bag constant subtrees are folded against: they never read it."""

    def get(self, name: str) -> tuple[Any, bool]:
        raise AssertionError(f"constant expression read attribute {name}")

    def map_value(self, name: str, key: str) -> tuple[str, bool]:
        raise AssertionError(f"constant expression read attribute {name}")


class Expression:
    """A compiled expression. `evaluate(bag)` returns its value (of `type`'s Python form) or
    raises EvalError."""

    __slots__ = ("_fn", "attributes", "text", "tree", "type")

    def __init__(self, text: str, tree: Typed, attributes: frozenset[str], fn: Closure) -> None:
        self.text = text
        self.tree = tree
        self.type: ValueType = tree.type
        self.attributes = attributes  # every attribute name it may read
        self._fn = fn

    def evaluate(self, bag: Bag) -> Any:
        try:
            return self._fn(bag)
        except (TypeError, AttributeError, KeyError, ValueError, OverflowError) as error:
            # A bag holding a value of the wrong type, or a broken bag: still the evaluation's
            # failure, never the server's.
            raise EvalError(f"evaluating {self.text!r}: {error}") from error

    def __repr__(self) -> str:
        return f"Expression({self.text!r}, {self.type.name})"


def compile_expression(
    text: str, types: Mapping[str, ValueType], *, want: ValueType | None = None
) -> Expression:
    """Parse, type-check and compile `text` against the vocabulary `types`.

    With `want`, the expression must have that type. Raises LangError.
    """
    tree = check(parse(text), types, want=want)
    return compile_tree(tree, text)


def compile_tree(tree: Typed, text: str = "") -> Expression:
    """The Expression of an already checked tree; raises LangError for a constant subtree
    that cannot be evaluated."""
    compiler = _Compiler()
    code = compiler.strict(tree)
    if compiler.errors:
        raise compiler.errors[0]
    return Expression(text, tree, ast.attribute_names(tree.node), code.fn)


class _Code(NamedTuple):
    fn: Closure
    constant: bool  # reads no attribute: `value` is what fn always returns
    value: Any = None


def _const(value: Any) -> _Code:
    return _Code(lambda bag: value, True, value)


class _Compiler:
    def __init__(self) -> None:
        self.errors: list[LangError] = []

    def strict(self, typed: Typed) -> _Code:
        return self.folded(typed, self.build_strict)

    def optional(self, typed: Typed) -> _Code:
        if not isinstance(typed.node, Attribute | Index | Binary) or (
            isinstance(typed.node, Binary) and typed.node.op != "|"
        ):
            return self.strict(typed)
        return self.folded(typed, self.build_optional)

    def folded(self, typed: Typed, build: Callable[[Typed], _Code]) -> _Code:
        """The code of `typed`, evaluated now when it reads no attribute."""
        mark = len(self.errors)
        code = build(typed)
        if code.constant or not _is_constant(typed):
            return code
        try:
            value = code.fn(_EmptyBag())
        except EvalError as error:
            if len(self.errors) == mark:  # the innermost failing subtree says it best
                self.errors.append(LangError(str(error), typed.node.pos))
            return code
        del self.errors[mark:]  # a constant whole that evaluates hides its unused parts
        return _const(value)

    # ---- strict closures: a value or EvalError

    def build_strict(self, typed: Typed) -> _Code:
        node = typed.node
        match node:
            case Literal():
                return _const(_literal(typed))
            case Attribute(name):
                return _Code(_attribute(name), False)
            case Index():
                return self.index(typed, optional=False)
            case Unary(op):
                return self.unary(op, typed)
            case Binary("|"):
                left, right = typed.children
                return self.default(self.optional(left), self.strict(right))
            case Binary(op):
                return self.binary(op, typed)
            case Call():
                return self.call(typed)
        raise TypeError(f"not an expression node: {node!r}")

    # ---- optional closures: a value or MISSING

    def build_optional(self, typed: Typed) -> _Code:
        node = typed.node
        if isinstance(node, Attribute):
            return _Code(_optional_attribute(node.name), False)
        if isinstance(node, Index):
            return self.index(typed, optional=True)
        left, right = typed.children  # a `|` inside a `|`
        return self.default(self.optional(left), self.optional(right))

    def default(self, left: _Code, right: _Code) -> _Code:
        """`left | right`: left unless it is MISSING."""
        if left.constant:
            return left if left.value is not MISSING else right
        first, second = left.fn, right.fn

        def fn(bag: Any) -> Any:
            value = first(bag)
            return value if value is not MISSING else second(bag)

        return _Code(fn, False)

    def index(self, typed: Typed, *, optional: bool) -> _Code:
        target, key = typed.children
        mode = self.optional if optional else self.strict
        key_code = mode(key)
        if isinstance(target.node, Attribute):
            return _Code(_map_attribute(target.node.name, key_code, optional), False)
        target_fn, key_fn = mode(target).fn, key_code.fn

        if optional:

            def lookup(bag: Any) -> Any:
                mapping = target_fn(bag)
                if mapping is MISSING:
                    return MISSING
                key = key_fn(bag)
                if key is MISSING:
                    return MISSING
                value = mapping.get(key)
                return MISSING if value is None else value

        else:

            def lookup(bag: Any) -> Any:
                key = key_fn(bag)
                value = target_fn(bag).get(key)
                if value is None:
                    raise EvalError(f"map has no key {key!r}")
                return value

        return _Code(lookup, False)

    def unary(self, op: str, typed: Typed) -> _Code:
        operand = self.strict(typed.children[0]).fn
        if op == "!":
            return _Code(lambda bag: not operand(bag), False)
        if typed.type is T.INT64:
            return _Code(lambda bag: wrap_int64(-operand(bag)), False)
        return _Code(lambda bag: -operand(bag), False)

    def binary(self, op: str, typed: Typed) -> _Code:
        left_typed, right_typed = typed.children
        left, right = self.strict(left_typed), self.strict(right_typed)
        a, b = left.fn, right.fn
        if op == "&&":
            return _Code(lambda bag: a(bag) and b(bag), False)
        if op == "||":
            return _Code(lambda bag: a(bag) or b(bag), False)
        if op == "+":
            if typed.type is T.INT64:
                return _Code(lambda bag: wrap_int64(a(bag) + b(bag)), False)
            return _Code(lambda bag: a(bag) + b(bag), False)
        if op in ("==", "!="):
            return _Code(_equality(left_typed.type, left, right, negate=op == "!="), False)
        compare = _ORDERING[op]
        if right.constant:
            limit = right.value
            return _Code(lambda bag: compare(a(bag), limit), False)
        return _Code(lambda bag: compare(a(bag), b(bag)), False)

    def call(self, typed: Typed) -> _Code:
        node: Call = typed.node  # type: ignore[assignment]
        if node.name == "conditional" and node.target is None:
            condition, yes, no = (self.strict(c).fn for c in typed.children)
            return _Code(lambda bag: yes(bag) if condition(bag) else no(bag), False)
        args = [self.strict(c) for c in typed.children]
        if node.name == "size" and node.target is None:
            return _Code(_size(typed.children[0].type, args[0].fn), False)
        special = self.specialized(typed, args)
        if special is not None:
            return _Code(special, False)
        return _Code(_apply(functions.FUNCTIONS[node.name].impl, [a.fn for a in args]), False)

    def specialized(self, typed: Typed, args: list[_Code]) -> Closure | None:
        """Faster closures for calls with a constant pattern, prefix or suffix."""
        node: Call = typed.node  # type: ignore[assignment]
        if len(args) != 2:
            return None
        first, second = args
        if node.name == "matches":
            if not first.constant:
                return None
            try:
                search = functions.regex(first.value).search
            except EvalError as error:
                self.errors.append(LangError(str(error), typed.children[0].node.pos))
                return None
            text = second.fn
            return lambda bag: search(text(bag)) is not None
        if not second.constant:
            return None
        subject, literal = first.fn, second.value
        if node.name == "startsWith" or (node.name == "match" and literal.endswith("*")):
            prefix = literal[:-1] if node.name == "match" else literal
            return lambda bag: subject(bag).startswith(prefix)
        if node.name == "endsWith" or (node.name == "match" and literal.startswith("*")):
            suffix = literal[1:] if node.name == "match" else literal
            return lambda bag: subject(bag).endswith(suffix)
        if node.name == "match":
            return lambda bag: subject(bag) == literal
        return None


def _is_constant(typed: Typed) -> bool:
    return not any(isinstance(n, Attribute) for n in ast.walk(typed.node))


def _literal(typed: Typed) -> Any:
    node: Literal = typed.node  # type: ignore[assignment]
    if typed.type is T.DURATION:
        return parse_duration(node.value)  # type: ignore[arg-type]
    return node.value


def _attribute(name: str) -> Closure:
    absent = f"attribute {name} not found"

    def fn(bag: Any) -> Any:
        value, found = bag.get(name)
        if found:
            return value
        raise EvalError(absent)

    return fn


def _optional_attribute(name: str) -> Closure:
    def fn(bag: Any) -> Any:
        value, found = bag.get(name)
        return value if found else MISSING

    return fn


def _map_attribute(name: str, key: _Code, optional: bool) -> Closure:
    """`name[key]` for a string-map attribute, through the bag's map_value."""
    if key.constant and key.value is MISSING:  # `m[other["absent"]] | ...`
        return lambda bag: MISSING
    if key.constant:
        constant_key = key.value
        absent = f"attribute {name} has no key {constant_key!r}"
        if optional:

            def fn(bag: Any) -> Any:
                value, found = bag.map_value(name, constant_key)
                return value if found else MISSING

        else:

            def fn(bag: Any) -> Any:
                value, found = bag.map_value(name, constant_key)
                if found:
                    return value
                raise EvalError(absent)

        return fn
    key_fn = key.fn
    if optional:

        def fn(bag: Any) -> Any:
            key = key_fn(bag)
            if key is MISSING:
                return MISSING
            value, found = bag.map_value(name, key)
            return value if found else MISSING

    else:

        def fn(bag: Any) -> Any:
            key = key_fn(bag)
            value, found = bag.map_value(name, key)
            if found:
                return value
            raise EvalError(f"attribute {name} has no key {key!r}")

    return fn


_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _equality(kind: ValueType, left: _Code, right: _Code, *, negate: bool) -> Closure:
    a, b = left.fn, right.fn
    equal = values.equality(kind)
    if equal is not None:
        if negate:
            return lambda bag: not equal(a(bag), b(bag))
        return lambda bag: equal(a(bag), b(bag))
    if right.constant:
        constant = right.value
        if negate:
            return lambda bag: a(bag) != constant
        return lambda bag: a(bag) == constant
    if negate:
        return lambda bag: a(bag) != b(bag)
    return lambda bag: a(bag) == b(bag)


def _size(kind: ValueType, operand: Closure) -> Closure:
    if kind is T.STRING:
        return lambda bag: len(operand(bag).encode("utf-8", "surrogatepass"))
    return lambda bag: len(operand(bag))


def _apply(impl: Callable[..., Any], args: list[Closure]) -> Closure:
    match args:
        case []:
            return lambda bag: impl()
        case [a]:
            return lambda bag: impl(a(bag))
        case [a, b]:
            return lambda bag: impl(a(bag), b(bag))
        case [a, b, c]:
            return lambda bag: impl(a(bag), b(bag), c(bag))
    return lambda bag: impl(*[f(bag) for f in args])
