"""The parser: Go's precedence, literals, names, calls, and errors with their positions."""

import pytest

from pkg.lang.ast import Attribute, Binary, Call, Index, Literal, Unary, attribute_names, walk
from pkg.lang.errors import LangError, Position
from pkg.lang.parser import MAX_DEPTH, parse
from pkg.lang.printer import format_expression, quote
from pkg.lang.types import ValueType

a, b, c = Attribute("a"), Attribute("b"), Attribute("c")


def s(value: str) -> Literal:
    return Literal(value, ValueType.STRING)


def i(value: int) -> Literal:
    return Literal(value, ValueType.INT64)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        # `|` binds like `+`, tighter than comparisons (Go's level 4).
        ("a == b | c", Binary("==", a, Binary("|", b, c))),
        ("a | b == c", Binary("==", Binary("|", a, b), c)),
        ("a | b | c", Binary("|", Binary("|", a, b), c)),
        ("a + b | c", Binary("|", Binary("+", a, b), c)),
        ("a | b + c", Binary("+", Binary("|", a, b), c)),
        ("a || b && c", Binary("||", a, Binary("&&", b, c))),
        ("a && b || c", Binary("||", Binary("&&", a, b), c)),
        ("a == b && b != c", Binary("&&", Binary("==", a, b), Binary("!=", b, c))),
        ("a < b == c", Binary("==", Binary("<", a, b), c)),  # left-associative in Go
        ("a <= b", Binary("<=", a, b)),
        ("a > b", Binary(">", a, b)),
        ("a >= b", Binary(">=", a, b)),
        ("(a || b) && c", Binary("&&", Binary("||", a, b), c)),
        ("((a))", a),
        ("!a == b", Binary("==", Unary("!", a), b)),
        ("!!a", Unary("!", Unary("!", a))),
        ("- -1", Unary("-", Unary("-", i(1)))),
        ("-a.f(b)", Unary("-", Call("f", (b,), Attribute("a")))),
        ("-a[b]", Unary("-", Index(a, b))),
    ],
)
def test_precedence(text, tree):
    assert parse(text) == tree


def test_names_indexing_and_calls():
    assert parse("context.reporter.kind") == Attribute("context.reporter.kind")
    assert parse("request.total_size") == Attribute("request.total_size")
    assert parse('source.labels["app"]') == Index(Attribute("source.labels"), s("app"))
    assert parse("m[a][b]") == Index(Index(Attribute("m"), a), b)
    assert parse("emptyStringMap()") == Call("emptyStringMap", ())
    assert parse('match(a, "x*",)') == Call("match", (a, s("x*")))  # Go allows a trailing comma
    assert parse('request.path.startsWith("/api")') == Call(
        "startsWith", (s("/api"),), Attribute("request.path")
    )
    assert parse('"svc.*".matches(destination.service)') == Call(
        "matches", (Attribute("destination.service"),), s("svc.*")
    )
    assert parse('(a | b).endsWith("z")') == Call("endsWith", (s("z"),), Binary("|", a, b))
    assert parse('m["k"].startsWith("x")') == Call(
        "startsWith", (s("x"),), Index(Attribute("m"), s("k"))
    )
    assert parse("f(a)[b]") == Index(Call("f", (a,)), b)


def test_literals():
    assert parse("true") == Literal(True, ValueType.BOOL)
    assert parse("FALSE") == Literal(False, ValueType.BOOL)  # Istio lowercases true/false
    assert parse("0") == i(0)
    assert parse("010") == i(10)  # Istio reads integers in base 10
    assert parse("9223372036854775807") == i(2**63 - 1)
    assert parse("1.5") == Literal(1.5, ValueType.DOUBLE)
    assert parse(".5") == Literal(0.5, ValueType.DOUBLE)
    assert parse("2.") == Literal(2.0, ValueType.DOUBLE)
    assert parse("1e3") == Literal(1000.0, ValueType.DOUBLE)
    assert parse("1.5E-2") == Literal(0.015, ValueType.DOUBLE)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'"plain"', "plain"),
        (r'"a\"b"', 'a"b'),
        (r'"tab\there\nnl\\"', "tab\there\nnl\\"),
        (r'"\a\b\f\r\v"', "\a\b\f\r\v"),
        (r'"\x41\101\u00e9\U0001F600"', "AAé😀"),
        (r'"\xc3\xa9"', "é"),  # bytes that make UTF-8 together
        ('`raw \\n "q"`', 'raw \\n "q"'),
        ("`two\r\nlines`", "two\nlines"),  # Go drops carriage returns from raw strings
        (r"'x'", "x"),
        (r"'\''", "'"),
        ('"ünïcode"', "ünïcode"),
    ],
)
def test_strings(text, value):
    assert parse(text) == s(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty expression"),
        ("a +", "expected an operand, found end of expression at 1:4"),
        ("(a", "expected ')', found end of expression at 1:3"),
        ("a b", "expected an operator or the end of the expression, found identifier b at 1:3"),
        ("a == == b", "expected an operand, found operator == at 1:6"),
        ("a - b", "operator - is not supported at 1:3"),
        ("a * b", "operator * is not supported at 1:3"),
        ("a & b", "operator & is not supported at 1:3"),
        ("+a", "unary operator + is not supported at 1:1"),
        ("a = b", "expected an operator or the end of the expression, found operator = at 1:3"),
        ("a[b", "expected ']', found end of expression at 1:4"),
        ("f(a b)", "expected ',' or ')', found identifier b at 1:5"),
        ("f(a)(b)", "only a function or method name can be called at 1:5"),
        (
            'm["k"].x',
            "field .x of a value: only attribute names are dotted and only methods follow an expression at 1:8",
        ),
        ("a.", "expected a method name after '.', found end of expression at 1:3"),
        ('"x".', "expected a method name after '.', found end of expression at 1:5"),
        ("a # b", "unexpected character '#' at 1:3"),
        ('"open', "string literal not terminated at 1:1"),
        ('"line\nbreak"', "string literal not terminated at 1:1"),
        ("`open", "raw string literal not terminated at 1:1"),
        ("'ab'", "a rune literal holds exactly one character at 1:1"),
        (r'"\q"', "unknown escape sequence at 1:2"),
        (r'"\x4"', "malformed escape sequence at 1:2"),
        (r'"\400"', "octal escape value > 255 at 1:2"),
        (r'"\ud800"', "escape sequence is an invalid Unicode code point at 1:2"),
        (r'"\xff"', "string literal is not valid UTF-8 at 1:1"),
        (r"'\"'", "unknown escape sequence at 1:2"),
        ("0x10", "only plain decimal numbers are supported, not 0x10 at 1:1"),
        ("1_000", "only plain decimal numbers are supported, not 1_000 at 1:1"),
        ("12abc", "malformed number 12abc at 1:1"),
        ("1.2.3", "malformed number 1.2.3 at 1:1"),
        ("9223372036854775808", "integer 9223372036854775808 does not fit in INT64 at 1:1"),
        ("1e999", "number 1e999 does not fit in DOUBLE at 1:1"),
        ("a ==\n  b &&\n  ]", "expected an operand, found ']' at 3:3"),
        ("`multi\nline` +\n", "expected an operand, found end of expression at 3:1"),
    ],
)
def test_errors(text, message):
    with pytest.raises(LangError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_error_carries_position():
    with pytest.raises(LangError) as caught:
        parse("source.ip ==\n   == 1")
    assert caught.value.position == Position(2, 4)
    assert caught.value.message == "expected an operand, found operator =="


def test_depth_is_bounded():
    deep = "(" * (MAX_DEPTH + 5) + "a" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(LangError, match="nested more than"):
        parse(deep)
    with pytest.raises(LangError, match="nested more than"):
        parse("!" * (MAX_DEPTH + 5) + "a")
    with pytest.raises(LangError, match="nested more than"):
        parse(" | ".join(["a"] * (MAX_DEPTH + 5)))
    assert parse("(" * 20 + "a" + ")" * 20) == a


def test_positions_point_at_principal_tokens():
    tree = parse('source.labels["app"] == "x"')
    assert tree.pos == Position(1, 22)  # the operator
    assert tree.left.pos == Position(1, 14)  # the `[`
    assert tree.left.target.pos == Position(1, 1)
    assert tree.right.pos == Position(1, 25)
    call = parse("request.path.startsWith(x)")
    assert call.pos == Position(1, 14)
    assert call.target.pos == Position(1, 1)


def test_positions_do_not_take_part_in_equality():
    assert parse("a==b") == parse("  (a)  ==  ( b )")


def test_walk_and_attribute_names():
    tree = parse('conditional(a == "x", source.labels["app"] | b, c.startsWith("y"))')
    assert attribute_names(tree) == {"a", "source.labels", "b", "c"}
    kinds = [type(n).__name__ for n in walk(tree)]
    assert kinds[0] == "Call"
    assert kinds.count("Attribute") == 4


@pytest.mark.parametrize(
    "text",
    [
        'source.labels["app"] | source.service | "unknown"',
        'match(request.headers["x-user"], "jason*")',
        'destination.labels["app"] == "ratings" && source.labels["version"] == "v3"',
        'conditional((context.reporter.kind | "inbound") == "outbound", "source", "destination")',
        "a | (b | c)",
        "a == (b == c)",
        "!(a && b)",
        "-(-1)",
        "(a || b) && c",
        '"re".matches(x)',
        "(1).f()",
        '(a + b).startsWith("x")',
        '"tab\\t\\"quote\\" \\x01"',
    ],
)
def test_printing_round_trips(text):
    tree = parse(text)
    printed = format_expression(tree)
    assert parse(printed) == tree
    assert format_expression(parse(printed)) == printed


def test_printing_is_minimal():
    assert format_expression(parse("((a == (b | c)))")) == "a == b | c"
    assert format_expression(parse("(a | b) == c")) == "a | b == c"
    assert format_expression(parse("a | (b | c)")) == "a | (b | c)"
    assert format_expression(parse("- - 1")) == "-(-1)"
    assert format_expression(parse("(true).f()")) == "(true).f()"


def test_quote():
    assert quote('a"b\\c\n\x00é') == '"a\\"b\\\\c\\n\\x00é"'
    with pytest.raises(ValueError, match="surrogate"):
        quote("\ud800")
