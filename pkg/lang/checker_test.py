"""Type checking: the type of each construct, and what a wrong one is told."""

import pytest

from pkg.lang.ast import Literal
from pkg.lang.checker import check
from pkg.lang.errors import LangError
from pkg.lang.parser import parse
from pkg.lang.types import ValueType as T

TYPES = {
    "s": T.STRING,
    "t": T.STRING,
    "n": T.INT64,
    "d": T.DOUBLE,
    "b": T.BOOL,
    "ts": T.TIMESTAMP,
    "ip": T.IP_ADDRESS,
    "mail": T.EMAIL_ADDRESS,
    "u": T.URI,
    "dns": T.DNS_NAME,
    "dur": T.DURATION,
    "m": T.STRING_MAP,
    "broken": T.VALUE_TYPE_UNSPECIFIED,
}


def type_of(text, want=None):
    return check(parse(text), TYPES, want=want).type


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"x"', T.STRING),
        ("1", T.INT64),
        ("1.5", T.DOUBLE),
        ("true", T.BOOL),
        ("ts", T.TIMESTAMP),
        ('m["k"]', T.STRING),
        ("m[s]", T.STRING),
        ("!b", T.BOOL),
        ("-n", T.INT64),
        ("-d", T.DOUBLE),
        ("s == t", T.BOOL),
        ("ip != ip", T.BOOL),
        ("dns == dns", T.BOOL),
        ("b == true", T.BOOL),
        ("n < 3", T.BOOL),
        ("d >= 1.0", T.BOOL),
        ("s <= t", T.BOOL),
        ("ts > ts", T.BOOL),
        ("dur < dur", T.BOOL),
        ("b && b || !b", T.BOOL),
        ("s + t", T.STRING),
        ("n + 1", T.INT64),
        ("d + d", T.DOUBLE),
        ('s | "x"', T.STRING),
        ("n | 0", T.INT64),
        ("m | emptyStringMap()", T.STRING_MAP),
        ('ip | ip("0.0.0.0")', T.IP_ADDRESS),
        ('match(s, "a*")', T.BOOL),
        ('ip("10.0.0.1")', T.IP_ADDRESS),
        ('timestamp("2015-01-02T15:04:35Z")', T.TIMESTAMP),
        ('email("a@b.io")', T.EMAIL_ADDRESS),
        ('dnsName("a.io")', T.DNS_NAME),
        ('uri("http://a.io")', T.URI),
        ('conditional(b, "x", s)', T.STRING),
        ("conditional(b, n, 2)", T.INT64),
        ('conditionalString(b, "x", s)', T.STRING),
        ("emptyStringMap()", T.STRING_MAP),
        ("size(s)", T.INT64),
        ("size(m)", T.INT64),
        ("toLower(s)", T.STRING),
        ('s.startsWith("a")', T.BOOL),
        ('s.endsWith("a")', T.BOOL),
        ('"a.*".matches(s)', T.BOOL),
        ('m["k"].startsWith("a")', T.BOOL),
        ('s | "x" == "y"', T.BOOL),
    ],
)
def test_types(text, expected):
    assert type_of(text) is expected


def test_duration_literals_follow_the_other_side():
    assert type_of('"10s" == dur') is T.BOOL
    assert type_of('dur > "1ms"') is T.BOOL
    assert type_of('dur | "0s"') is T.DURATION
    assert type_of('dur | "0s" | "1s"') is T.DURATION
    assert type_of('conditional(b, dur, "5m")') is T.DURATION
    assert type_of('conditional(b, "1s", "5m") == dur') is T.BOOL
    assert type_of('("1s" | "2s") == dur') is T.BOOL
    # Elsewhere a duration-looking literal stays a STRING.
    assert type_of('"10s"') is T.STRING
    assert type_of('s == "10s"') is T.BOOL
    assert type_of('"10s" + "5s"') is T.STRING
    typed = check(parse('"10s" == dur'), TYPES)
    assert typed.children[0].type is T.DURATION
    assert typed.children[0].node == Literal("10s", T.STRING)


def test_want():
    assert type_of("b", want=T.BOOL) is T.BOOL
    assert type_of('"1m"', want=T.DURATION) is T.DURATION
    assert type_of('conditional(b, "1s", "2s")', want=T.DURATION) is T.DURATION
    with pytest.raises(LangError) as caught:
        type_of("s", want=T.BOOL)
    assert str(caught.value) == "expression is STRING, want BOOL"
    with pytest.raises(LangError, match="expression is STRING, want DURATION"):
        type_of('"soon"', want=T.DURATION)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('source.lables["app"]', 'unknown attribute "source.lables" at 1:1'),
        ("broken", 'attribute "broken" has no value type at 1:1'),
        ("s == 1", "== of STRING and INT64 at 1:3"),
        ("n != 1.0", "!= of INT64 and DOUBLE at 1:3"),
        ('ip == "10.0.0.1"', "== of IP_ADDRESS and STRING at 1:4"),
        ("m == m", "== of STRING_MAP and STRING_MAP: string maps cannot be compared at 1:3"),
        (
            "b < b",
            "< of BOOL and BOOL: wants two STRING, INT64, DOUBLE, TIMESTAMP or DURATION at 1:3",
        ),
        ("n > d", "> of INT64 and DOUBLE at 1:3"),
        ("s && b", "&& of STRING and BOOL: wants BOOL operands at 1:3"),
        ("b || 1", "|| of BOOL and INT64: wants BOOL operands at 1:3"),
        ("s | 0", "| of STRING and INT64: both sides must have one type at 1:3"),
        ("b + b", "+ of BOOL and BOOL: wants two STRING, INT64 or DOUBLE at 1:3"),
        ("s + n", "+ of STRING and INT64 at 1:3"),
        ("dur + dur", "+ of DURATION and DURATION: wants two STRING, INT64 or DOUBLE at 1:5"),
        ("!s", "! wants BOOL, got STRING at 1:1"),
        ("-s", "- wants INT64 or DOUBLE, got STRING at 1:1"),
        ('s["k"]', "cannot index STRING with STRING: want STRING_MAP[STRING] at 1:2"),
        ("m[1]", "cannot index STRING_MAP with INT64: want STRING_MAP[STRING] at 1:2"),
        ("match(n, s)", "match() wants (STRING, STRING), got (INT64, STRING) at 1:1"),
        ('match("a")', "match() wants (STRING, STRING), got (STRING) at 1:1"),
        (
            'match("a", "b", "c")',
            "match() wants (STRING, STRING), got (STRING, STRING, STRING) at 1:1",
        ),
        ("ip(1)", "ip() wants (STRING), got (INT64) at 1:1"),
        ("emptyStringMap(s)", "emptyStringMap() wants (), got (STRING) at 1:1"),
        ("nope(s)", 'unknown function "nope" at 1:1'),
        ("s.nope()", 'unknown method "nope" at 1:3'),
        (
            'startsWith(s, "a")',
            "startsWith is a method: call it as value.startsWith(STRING) at 1:1",
        ),
        ('s.match("a")', "match is a function, not a method: call it as match(...) at 1:3"),
        (
            "n.startsWith(s)",
            "startsWith() wants STRING.startsWith(STRING), got INT64.startsWith(STRING) at 1:3",
        ),
        (
            '"a".matches(1)',
            "matches() wants STRING.matches(STRING), got STRING.matches(INT64) at 1:5",
        ),
        (
            "conditional(s, 1, 2)",
            "conditional() wants (BOOL, T, T), got (STRING, INT64, INT64) at 1:1",
        ),
        (
            'conditional(b, 1, "2")',
            "conditional() wants (BOOL, T, T), got (BOOL, INT64, STRING) at 1:1",
        ),
        ("conditional(b, 1)", "conditional() wants (BOOL, T, T), got (BOOL, INT64) at 1:1"),
        ("size(n)", "size() wants (STRING) or (STRING_MAP), got (INT64) at 1:1"),
        ("size(s, s)", "size() wants (STRING) or (STRING_MAP), got (STRING, STRING) at 1:1"),
        ('"10s" == s | dur', "| of STRING and DURATION: both sides must have one type at 1:12"),
        ('"soon" == dur', "== of STRING and DURATION at 1:8"),
        ('(s | "1s") == dur', "== of STRING and DURATION at 1:12"),
        ("b &&\n  unknown.attr", 'unknown attribute "unknown.attr" at 2:3'),
    ],
)
def test_errors(text, message):
    with pytest.raises(LangError) as caught:
        check(parse(text), TYPES)
    assert str(caught.value) == message
