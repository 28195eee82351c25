"""Properties over random well-typed expressions.

A generator builds expression trees of a wanted type over a small vocabulary. For each:
printing and parsing gives the tree back; the checker finds the type it was built for; and
the compiled closures agree with a plain tree-walking interpreter written here, on random
bags in which any attribute may be absent. The laws of `|` are checked the same way.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from typing import Any

import hypothesis
from hypothesis import strategies as st

from pkg.lang.ast import Attribute, Binary, Call, Index, Literal, Node, Unary
from pkg.lang.bag import DictBag
from pkg.lang.checker import check
from pkg.lang.compiler import compile_expression
from pkg.lang.errors import EvalError, LangError
from pkg.lang.parser import parse
from pkg.lang.printer import format_expression
from pkg.lang.types import ValueType as T
from pkg.lang.types import wrap_int64

VOCABULARY = {
    "s1": T.STRING,
    "source.name": T.STRING,
    "n1": T.INT64,
    "request.size": T.INT64,
    "x1": T.DOUBLE,
    "b1": T.BOOL,
    "connection.mtls": T.BOOL,
    "m1": T.STRING_MAP,
    "source.labels": T.STRING_MAP,
}
NAMES = {t: sorted(n for n, v in VOCABULARY.items() if v is t) for t in set(VOCABULARY.values())}
PATTERNS = ["^a", "b+", ".*", "x|y", "^$", "[0-9]"]
SETTINGS = hypothesis.settings(database=None, deadline=None, max_examples=300)

_SURROGATES: tuple[typing.Literal["Cs"]] = ("Cs",)
texts = st.text(st.characters(blacklist_categories=_SURROGATES), max_size=6)
extremes = st.sampled_from([2**63 - 1, 2**62, -(2**63), -(2**62) - 1])  # where int64 wraps
short = st.sampled_from(["", "a", "ab", "b", "x", "app", "*a", "a*", "AB", "é"])


def literals(kind: T) -> st.SearchStrategy[Node]:
    if kind is T.STRING:
        values: st.SearchStrategy[Any] = st.one_of(short, texts)
    elif kind is T.INT64:
        values = st.one_of(
            st.integers(0, 5), st.sampled_from([2**63 - 1, 2**62]), st.integers(0, 2**63 - 1)
        )
    elif kind is T.DOUBLE:
        values = st.floats(0, 1e300, allow_nan=False).map(abs)
    else:
        values = st.booleans()
    return values.map(lambda v: Literal(v, kind))


def attributes(kind: T) -> st.SearchStrategy[Node]:
    return st.sampled_from(NAMES[kind]).map(Attribute)


def leaves(kind: T) -> st.SearchStrategy[Node]:
    if kind is T.STRING_MAP:
        return st.one_of(attributes(kind), st.just(Call("emptyStringMap", ())))
    return st.one_of(literals(kind), attributes(kind))


@st.composite
def expressions(draw: st.DrawFn, kind: T, depth: int = 3) -> Node:
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(leaves(kind))
    sub = depth - 1

    def of(k: T) -> Node:
        return draw(expressions(k, sub))

    choices: list[Any] = [
        lambda: Binary("|", of(kind), of(kind)),
        lambda: Call("conditional", (of(T.BOOL), of(kind), of(kind))),
    ]
    if kind is T.STRING:
        choices += [
            lambda: Index(of(T.STRING_MAP), of(T.STRING)),
            lambda: Binary("+", of(T.STRING), of(T.STRING)),
            lambda: Call("conditionalString", (of(T.BOOL), of(T.STRING), of(T.STRING))),
            lambda: Call("toLower", (of(T.STRING),)),
        ]
    elif kind in (T.INT64, T.DOUBLE):
        choices += [
            lambda: Unary("-", of(kind)),
            lambda: Binary("+", of(kind), of(kind)),
        ]
        if kind is T.INT64:
            choices.append(
                lambda: Call("size", (of(draw(st.sampled_from([T.STRING, T.STRING_MAP]))),))
            )
    elif kind is T.BOOL:
        comparable = st.sampled_from([T.STRING, T.INT64, T.DOUBLE, T.BOOL])
        ordered = st.sampled_from([T.STRING, T.INT64, T.DOUBLE])

        def comparison(ops: list[str], kinds: st.SearchStrategy[T]) -> Node:
            k = draw(kinds)
            return Binary(draw(st.sampled_from(ops)), of(k), of(k))

        choices += [
            lambda: Unary("!", of(T.BOOL)),
            lambda: Binary(draw(st.sampled_from(["&&", "||"])), of(T.BOOL), of(T.BOOL)),
            lambda: comparison(["==", "!="], comparable),
            lambda: comparison(["<", "<=", ">", ">="], ordered),
            lambda: Call("match", (of(T.STRING), of(T.STRING))),
            lambda: Call(
                draw(st.sampled_from(["startsWith", "endsWith"])), (of(T.STRING),), of(T.STRING)
            ),
            lambda: Call(
                "matches", (of(T.STRING),), Literal(draw(st.sampled_from(PATTERNS)), T.STRING)
            ),
        ]
    return draw(st.sampled_from(choices))()


@st.composite
def bags(draw: st.DrawFn) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, kind in VOCABULARY.items():
        if draw(st.integers(0, 3)) == 0:
            continue  # absent
        if kind is T.STRING:
            values[name] = draw(short)
        elif kind is T.INT64:
            values[name] = draw(st.one_of(extremes, st.integers(-(2**63), 2**63 - 1)))
        elif kind is T.DOUBLE:
            values[name] = draw(st.floats(-1e6, 1e6, allow_nan=False))
        elif kind is T.BOOL:
            values[name] = draw(st.booleans())
        else:
            values[name] = draw(st.dictionaries(short, short, max_size=3))
    return values


# ---- the reference: a direct tree walk with Istio's absence rules


class Absent(Exception):
    pass


MISSING = object()


def evaluate(node: Node, bag: dict[str, Any]) -> Any:
    """The value of `node`, or Absent when an attribute or key it needs is not there."""
    match node:
        case Literal(value):
            return value
        case Attribute(name):
            if name not in bag:
                raise Absent(name)
            return bag[name]
        case Index(target, key):
            mapping, k = evaluate(target, bag), evaluate(key, bag)
            if k not in mapping:
                raise Absent(k)
            return mapping[k]
        case Binary("|", left, right):
            value = optional(left, bag)
            return evaluate(right, bag) if value is MISSING else value
        case Unary("!", operand):
            return not evaluate(operand, bag)
        case Unary("-", operand):
            value = evaluate(operand, bag)
            return wrap_int64(-value) if isinstance(value, int) else -value
        case Binary("&&", left, right):
            return evaluate(left, bag) and evaluate(right, bag)
        case Binary("||", left, right):
            return evaluate(left, bag) or evaluate(right, bag)
        case Binary("+", left, right):
            total = evaluate(left, bag) + evaluate(right, bag)
            return wrap_int64(total) if isinstance(total, int) else total
        case Binary(op, left, right):
            a, b = evaluate(left, bag), evaluate(right, bag)
            return {
                "==": a == b,
                "!=": a != b,
                "<": a < b,
                "<=": a <= b,
                ">": a > b,
                ">=": a >= b,
            }[op]
        case Call("conditional" | "conditionalString", (condition, yes, no)):
            if node.name == "conditionalString":  # an extern: all arguments are evaluated
                chosen = [evaluate(yes, bag), evaluate(no, bag)]
                return chosen[0] if evaluate(condition, bag) else chosen[1]
            return evaluate(yes, bag) if evaluate(condition, bag) else evaluate(no, bag)
        case Call("emptyStringMap"):
            return {}
        case Call("toLower", (text,)):
            return evaluate(text, bag).lower()
        case Call("size", (value,)):
            v = evaluate(value, bag)
            return len(v.encode()) if isinstance(v, str) else len(v)
        case Call("match", (text, pattern)):
            t, p = evaluate(text, bag), evaluate(pattern, bag)
            if p.endswith("*"):
                return t.startswith(p[:-1])
            if p.startswith("*"):
                return t.endswith(p[1:])
            return t == p
        case Call("startsWith", (prefix,), target) if target is not None:
            return evaluate(target, bag).startswith(evaluate(prefix, bag))
        case Call("endsWith", (suffix,), target) if target is not None:
            return evaluate(target, bag).endswith(evaluate(suffix, bag))
        case Call("matches", (text,), pattern) if pattern is not None:
            return re.search(evaluate(pattern, bag), evaluate(text, bag)) is not None
    raise AssertionError(f"unexpected node {node}")


def optional(node: Node, bag: dict[str, Any]) -> Any:
    """Inside `|`: attributes, map keys and `|` yield MISSING when absent; the rest is strict."""
    match node:
        case Attribute(name):
            return bag.get(name, MISSING)
        case Index(target, key):
            mapping, k = optional(target, bag), optional(key, bag)
            if mapping is MISSING or k is MISSING:
                return MISSING
            return mapping.get(k, MISSING)
        case Binary("|", left, right):
            value = optional(left, bag)
            return optional(right, bag) if value is MISSING else value
    return evaluate(node, bag)


def outcome(evaluate_once) -> tuple[str, Any]:
    try:
        return "value", evaluate_once()
    except (Absent, EvalError):
        return "error", None


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    x, y = a[1], b[1]
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, Mapping) and isinstance(y, Mapping):
        return dict(x) == dict(y)
    return type(x) is type(y) and x == y  # so True is not 1


def compiled(tree: Node):
    try:
        return compile_expression(format_expression(tree), VOCABULARY)
    except LangError as error:
        # Only a constant subtree that cannot be evaluated (`emptyStringMap()["a"]`) may fail.
        if "has no key" not in str(error):
            raise
        hypothesis.reject()


kinds = st.sampled_from([T.STRING, T.INT64, T.DOUBLE, T.BOOL, T.STRING_MAP])


@SETTINGS
@hypothesis.given(st.data())
def test_print_parse_round_trip(data):
    kind = data.draw(kinds)
    tree = data.draw(expressions(kind))
    text = format_expression(tree)
    assert parse(text) == tree
    assert check(parse(text), VOCABULARY).type is kind


@SETTINGS
@hypothesis.given(st.data(), bags())
def test_compiled_agrees_with_the_reference(data, values):
    tree = data.draw(expressions(data.draw(kinds)))
    expression = compiled(tree)
    got = outcome(lambda: expression.evaluate(DictBag(values)))
    want = outcome(lambda: evaluate(tree, values))
    assert same(got, want), (format_expression(tree), values, got, want)


@SETTINGS
@hypothesis.given(st.data(), bags())
def test_default_laws(data, values):
    kind = data.draw(kinds)
    a, b, c = (data.draw(expressions(kind, 2)) for _ in range(3))
    bag = DictBag(values)

    def run(tree: Node) -> tuple[str, Any]:
        expression = compiled(tree)
        return outcome(lambda: expression.evaluate(bag))

    # a | a == a wherever a has a value
    alone = run(a)
    if alone[0] == "value":
        assert same(run(Binary("|", a, a)), alone)
    # absent | b == b
    absent = next((n for n in NAMES[kind] if n not in values), None)
    if absent is not None:
        assert same(run(Binary("|", Attribute(absent), b)), run(b))
    # present | b == present
    present = next((n for n in NAMES[kind] if n in values), None)
    if present is not None:
        assert same(run(Binary("|", Attribute(present), b)), ("value", values[present]))
    # (a | b) | c == a | (b | c)
    assert same(run(Binary("|", Binary("|", a, b), c)), run(Binary("|", a, Binary("|", b, c))))


@SETTINGS
@hypothesis.given(
    st.one_of(extremes, st.integers(-(2**63), 2**63 - 1)),
    st.one_of(extremes, st.integers(-(2**63), 2**63 - 1)),
)
def test_int64_arithmetic_wraps_as_in_go(a, b):
    bag = DictBag({"n1": a, "request.size": b})
    assert compile_expression("n1 + request.size", VOCABULARY).evaluate(bag) == wrap_int64(a + b)
    assert compile_expression("-n1", VOCABULARY).evaluate(bag) == wrap_int64(-a)
    assert (
        -(2**63) <= compile_expression("n1 + n1 + request.size", VOCABULARY).evaluate(bag) < 2**63
    )
