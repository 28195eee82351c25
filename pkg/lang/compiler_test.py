"""Evaluation: every operator and function, absent attributes, Istio's documented examples."""

import datetime
import re

import pytest

from pkg.lang.bag import DictBag
from pkg.lang.compiler import Expression, compile_expression
from pkg.lang.errors import EvalError, LangError
from pkg.lang.types import ValueType as T

UTC = datetime.UTC
TYPES = {
    "s": T.STRING,
    "t": T.STRING,
    "n": T.INT64,
    "k": T.INT64,
    "d": T.DOUBLE,
    "b": T.BOOL,
    "ts": T.TIMESTAMP,
    "ip": T.IP_ADDRESS,
    "mail": T.EMAIL_ADDRESS,
    "u": T.URI,
    "dns": T.DNS_NAME,
    "dur": T.DURATION,
    "m": T.STRING_MAP,
    "absent": T.STRING,
    "absent.map": T.STRING_MAP,
    "absent.n": T.INT64,
    # Istio's names for the documented examples
    "source.labels": T.STRING_MAP,
    "source.service": T.STRING,
    "source.ip": T.IP_ADDRESS,
    "destination.labels": T.STRING_MAP,
    "request.headers": T.STRING_MAP,
    "request.size": T.INT64,
    "request.path": T.STRING,
    "response.duration": T.DURATION,
    "response.code": T.INT64,
    "context.reporter.kind": T.STRING,
    "context.protocol": T.STRING,
    "connection.mtls": T.BOOL,
    "api.protocol": T.STRING,
}
VALUES = {
    "s": "hello",
    "t": "world",
    "n": 7,
    "k": 3,
    "d": 2.5,
    "b": True,
    "ts": datetime.datetime(2018, 7, 31, 12, 0, tzinfo=UTC),
    "ip": bytes([10, 0, 0, 1]),
    "mail": "Joe@Istio.io",
    "u": "HTTP://Istio.io/docs",
    "dns": "WWW.istio.io.",
    "dur": datetime.timedelta(seconds=10),
    "m": {"k": "v", "app": "ratings"},
}
BAG = DictBag(VALUES)


def run(text, values=None, types=TYPES):
    return compile_expression(text, types).evaluate(DictBag(VALUES if values is None else values))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"x"', "x"),
        ("42", 42),
        ("0.5", 0.5),
        ("false", False),
        ("s", "hello"),
        ('m["k"]', "v"),
        ('m["app"]', "ratings"),
        ("!b", False),
        ("-n", -7),
        ("-d", -2.5),
        ("- -n", 7),
        ("-(-9223372036854775807)", 9223372036854775807),
        ('s == "hello"', True),
        ('"hello" == s', True),
        ("s != t", True),
        ("n == 7", True),
        ("n != k", True),
        ("d == 2.5", True),
        ("b == true", True),
        ("b != b", False),
        ("s < t", True),
        ("s <= s", True),
        ("s > t", False),
        ("n >= 7", True),
        ("n > k", True),
        ("k < n", True),
        ("d < 3.0", True),
        ('ts > timestamp("2018-01-01T00:00:00Z")', True),
        ('ts == timestamp("2018-07-31T14:00:00+02:00")', True),
        ('dur >= "10s"', True),
        ('dur < "10s"', False),
        ('"10s" == dur', True),
        ('"10000ms" == dur', True),
        ("b && n > 1", True),
        ("b && n > 100", False),
        ("n > 100 || b", True),
        ("!b || false", False),
        ("s + t", "helloworld"),
        ('s + " " + t', "hello world"),
        ("n + k", 10),
        ("d + 0.25", 2.75),
        ("9223372036854775807 + 1", -9223372036854775808),  # int64 wraps, as in Go
        ('s | "x"', "hello"),
        ('absent | "x"', "x"),
        ('absent | s | "x"', "hello"),
        ('m["nope"] | m["k"]', "v"),
        ('absent.map["k"] | "none"', "none"),
        ("absent.n | n", 7),
        ("m | emptyStringMap()", {"k": "v", "app": "ratings"}),
        ("size(absent.map | emptyStringMap())", 0),
        ('(absent.map | m)["app"]', "ratings"),
        ('(absent.map | emptyStringMap())["app"] | "default"', "default"),
        ('m[absent] | "key absent"', "key absent"),
        ('m[s | "k"] | "x"', "x"),  # key "hello" is not in m
        ('m[absent | "k"]', "v"),
        ('m[emptyStringMap()["x"]] | "d"', "d"),
        ('match(s, "hel*")', True),
        ('match(s, "*llo")', True),
        ('match(s, "hello")', True),
        ('match(s, "hell")', False),
        ('match(s, "*")', True),
        ("match(s, t)", False),
        ('match("hel*", "hel*")', True),
        ('s.startsWith("he")', True),
        ("s.startsWith(t)", False),
        ('s.endsWith("lo")', True),
        ('s.endsWith("he")', False),
        ('"^h.l+o$".matches(s)', True),
        ('"l{2}".matches(s)', True),  # anywhere in the string, as Go's MatchString
        ('"^x".matches(s)', False),
        ("s.matches(t)", False),  # a pattern from an attribute
        ('"(?i)HELLO".matches(s)', True),
        ('toLower("MiXeD")', "mixed"),
        ('toLower(s + "ABC")', "helloabc"),
        ("size(s)", 5),
        ('size("héllo")', 6),  # UTF-8 bytes, as Go's len()
        ("size(m)", 2),
        ('conditional(b, "yes", "no")', "yes"),
        ('conditional(!b, "yes", "no")', "no"),
        ("conditional(b, n, absent.n)", 7),  # only the chosen branch is evaluated
        ('conditional(b, dur, "1s")', datetime.timedelta(seconds=10)),
        ('conditional(false, dur, "1s")', datetime.timedelta(seconds=1)),
        ('conditionalString(b, "yes", "no")', "yes"),
        ('conditionalString(false, "yes", s)', "hello"),
        ("emptyStringMap()", {}),
        ('ip("10.0.0.1")', bytes([10, 0, 0, 1])),
        ('ip == ip("10.0.0.1")', True),
        ('ip == ip("::ffff:10.0.0.1")', True),
        ('ip != ip("10.0.0.2")', True),
        ('dns == dnsName("www.Istio.io")', True),
        ('dns != dnsName("istio.io")', True),
        ('mail == email("Joe@istio.IO")', True),
        ('mail == email("joe@istio.io")', False),
        ('u == uri("http://istio.io/docs")', True),
        ('u == uri("http://istio.io/Docs")', False),
        ('email("a@b.io")', "a@b.io"),
        ('dnsName("a.io")', "a.io"),
        ('uri("http://a.io")', "http://a.io"),
        ('timestamp("2015-01-02T15:04:35Z")', datetime.datetime(2015, 1, 2, 15, 4, 35, tzinfo=UTC)),
    ],
)
def test_evaluate(text, value):
    assert run(text) == value


def test_istio_examples():
    types = TYPES
    expr = compile_expression('source.labels["app"] | source.service | "unknown"', types)
    assert expr.type is T.STRING
    assert expr.evaluate(DictBag({"source.labels": {"app": "reviews"}})) == "reviews"
    assert expr.evaluate(DictBag({"source.labels": {}, "source.service": "svc"})) == "svc"
    assert expr.evaluate(DictBag({})) == "unknown"

    expr = compile_expression('match(request.headers["x-user"], "jason*")', types)
    assert expr.evaluate(DictBag({"request.headers": {"x-user": "jason2"}})) is True
    assert expr.evaluate(DictBag({"request.headers": {"x-user": "bob"}})) is False
    with pytest.raises(EvalError, match=r"request\.headers has no key 'x-user'"):
        expr.evaluate(DictBag({"request.headers": {}}))

    expr = compile_expression(
        'destination.labels["app"] == "ratings" && source.labels["version"] == "v3"', types
    )
    bag = {"destination.labels": {"app": "ratings"}, "source.labels": {"version": "v3"}}
    assert expr.evaluate(DictBag(bag)) is True
    bag["source.labels"] = {"version": "v2"}
    assert expr.evaluate(DictBag(bag)) is False
    # && short-circuits: the source labels are not read when the destination does not match.
    assert expr.evaluate(DictBag({"destination.labels": {"app": "details"}})) is False

    expr = compile_expression("request.size | 0", types)
    assert expr.type is T.INT64
    assert expr.evaluate(DictBag({"request.size": 512})) == 512
    assert expr.evaluate(DictBag({})) == 0

    reporter = compile_expression(
        'conditional((context.reporter.kind | "inbound") == "outbound", "source", "destination")',
        types,
    )
    assert reporter.evaluate(DictBag({"context.reporter.kind": "outbound"})) == "source"
    assert reporter.evaluate(DictBag({"context.reporter.kind": "inbound"})) == "destination"
    assert reporter.evaluate(DictBag({})) == "destination"

    duration = compile_expression('"10s" == response.duration', types)
    assert duration.type is T.BOOL
    assert duration.evaluate(DictBag({"response.duration": datetime.timedelta(seconds=10)}))
    assert not duration.evaluate(DictBag({"response.duration": datetime.timedelta(seconds=9)}))

    ip = compile_expression('source.ip == ip("10.11.12.13")', types)
    assert ip.evaluate(DictBag({"source.ip": bytes([10, 11, 12, 13])}))

    protocol = compile_expression('context.protocol == "http" || context.protocol == "grpc"', types)
    assert protocol.evaluate(DictBag({"context.protocol": "grpc"}))
    assert not protocol.evaluate(DictBag({"context.protocol": "tcp"}))

    assert run("response.code | 200", {}) == 200
    assert run("connection.mtls | false", {}) is False
    assert run("api.protocol | context.protocol", {"context.protocol": "http"}) == "http"
    assert run('"svc.*".matches(request.path)', {"request.path": "/svc/a"}) is True
    assert run('"^/svc".matches(request.path)', {"request.path": "/api/svc"}) is False
    assert run('request.headers["x-user"] == ""', {"request.headers": {"x-user": ""}}) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("absent", "attribute absent not found"),
        ('absent == "x"', "attribute absent not found"),
        ("absent.n + 1", "attribute absent.n not found"),
        ('absent.map["k"]', "attribute absent.map has no key 'k'"),
        ('m["nope"]', "attribute m has no key 'nope'"),
        ("m[t]", "attribute m has no key 'world'"),
        ("m[absent]", "attribute absent not found"),
        ('(absent.map | m)["nope"]', "map has no key 'nope'"),
        ('absent | absent.map["k"]', "attribute absent.map has no key 'k'"),
        ('(absent + "x") | "fallback"', "attribute absent not found"),  # as in Istio
        ("size(absent) | 0", "attribute absent not found"),
        ('conditional(absent == "x", 1, 2)', "attribute absent not found"),
        ("ip(s)", "could not convert 'hello' to IP_ADDRESS"),
        ("timestamp(s)", "could not convert 'hello' to TIMESTAMP: want RFC 3339"),
        ("email(s)", "want a bare address user@domain"),
        ('dnsName(s + "..")', "empty label"),
        ('uri(":" + s)', "missing protocol scheme"),
        ('(s + "(").matches(t)', "invalid regular expression"),
    ],
)
def test_evaluation_errors(text, message):
    expr = compile_expression(text, TYPES)
    with pytest.raises(EvalError, match=re.escape(message)):
        expr.evaluate(BAG)


def test_a_wrongly_typed_bag_value_is_an_evaluation_error():
    expr = compile_expression('s.startsWith("a")', TYPES)
    with pytest.raises(EvalError, match="evaluating"):
        expr.evaluate(DictBag({"s": 12}))


class RecordingBag(DictBag):
    """Records what evaluation asked for, as Mixer's reference-tracking bag does."""

    def __init__(self, values):
        super().__init__(values)
        self.calls = []

    def get(self, name):
        self.calls.append(("get", name))
        return super().get(name)

    def map_value(self, name, key):
        self.calls.append(("map_value", name, key))
        return super().map_value(name, key)


def test_map_lookups_go_through_map_value():
    bag = RecordingBag({"request.headers": {"x-user": "jason"}, "source.labels": {}})
    expr = compile_expression(
        'match(request.headers["x-user"], "jason*") && source.labels["app"] | "x" == "x"', TYPES
    )
    assert expr.evaluate(bag) is True
    assert bag.calls == [
        ("map_value", "request.headers", "x-user"),
        ("map_value", "source.labels", "app"),
    ]
    bag = RecordingBag({"m": {"hello": "v"}, "s": "hello"})
    assert compile_expression("m[s]", TYPES).evaluate(bag) == "v"
    assert bag.calls == [("get", "s"), ("map_value", "m", "hello")]
    # A map used whole is read whole.
    bag = RecordingBag({"m": {"a": "b"}})
    assert compile_expression("size(m)", TYPES).evaluate(bag) == 1
    assert bag.calls == [("get", "m")]


def test_defaults_stop_at_the_first_value():
    bag = RecordingBag({"s": "x", "t": "y"})
    assert compile_expression("absent | s | t", TYPES).evaluate(bag) == "x"
    assert bag.calls == [("get", "absent"), ("get", "s")]


def test_expression_attributes():
    expr = compile_expression('conditional(b, m["k"] | s, "x") == t && "re".matches(absent)', TYPES)
    assert isinstance(expr, Expression)
    assert expr.text.startswith("conditional(")
    assert expr.type is T.BOOL
    assert expr.attributes == {"b", "m", "s", "t", "absent"}
    assert repr(expr) == f"Expression({expr.text!r}, BOOL)"


def test_constants_are_evaluated_once_at_compile_time():
    expr = compile_expression('ip("10.0.0.1") == ip("::ffff:10.0.0.1") && size("abc") == 3', TYPES)
    assert expr.attributes == frozenset()
    assert expr.evaluate(None) is True  # the folded closure never reads the bag
    unused = compile_expression('conditional(false, ip("bad"), ip("10.0.0.1"))', TYPES)
    assert unused.evaluate(None) == bytes([10, 0, 0, 1])
    fallback = compile_expression('emptyStringMap()["k"] | "d"', TYPES)
    assert fallback.evaluate(None) == "d"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('source.ip == ip("10.0.0")', "could not convert '10.0.0' to IP_ADDRESS at 1:14"),
        (
            'ts > timestamp("yesterday")',
            "could not convert 'yesterday' to TIMESTAMP: want RFC 3339 at 1:6",
        ),
        (
            'conditional(b, email("nobody"), mail)',
            "error converting 'nobody' to e-mail: want a bare address user@domain at 1:16",
        ),
        ('"(".matches(s)', "invalid regular expression '(': missing ): ( at 1:1"),
        ('s == emptyStringMap()["k"]', "map has no key 'k' at 1:22"),
    ],
)
def test_constant_failures_are_compile_errors(text, message):
    with pytest.raises(LangError) as caught:
        compile_expression(text, TYPES)
    assert str(caught.value) == message


def test_want():
    assert compile_expression("b", TYPES, want=T.BOOL).type is T.BOOL
    assert compile_expression('"1m"', TYPES, want=T.DURATION).evaluate(None) == datetime.timedelta(
        minutes=1
    )
    with pytest.raises(LangError, match="expression is INT64, want BOOL"):
        compile_expression("n", TYPES, want=T.BOOL)


def test_dict_bag():
    bag = DictBag({"a": "x", "m": {"k": "v"}, "none": None})
    assert bag.get("a") == ("x", True)
    assert bag.get("none") == (None, False)
    assert bag.get("zzz") == (None, False)
    assert bag.map_value("m", "k") == ("v", True)
    assert bag.map_value("m", "q") == ("", False)
    assert bag.map_value("zzz", "k") == ("", False)
