"""Lines and values written the way Istio's stdio adapter (zap) writes them."""

from __future__ import annotations

import datetime
import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mixer.adapters.stdio.encoding import LineEncoder, encode_line, format_time, jsonable
from pkg.lang.types import format_duration

WHEN = datetime.datetime(2018, 7, 30, 12, 0, 1, 5, tzinfo=datetime.UTC)


def test_time_is_utc_with_microseconds():
    assert format_time(WHEN) == "2018-07-30T12:00:01.000005Z"
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert format_time(datetime.datetime(2018, 7, 30, 14, 0, tzinfo=plus_two)) == (
        "2018-07-30T12:00:00.000000Z"
    )
    assert format_time(datetime.datetime(2018, 7, 30)) == "2018-07-30T00:00:00.000000Z"


def test_a_year_below_1000_has_four_digits_as_in_go():
    assert format_time(datetime.datetime(5, 1, 2, tzinfo=datetime.UTC)) == (
        "0005-01-02T00:00:00.000000Z"
    )


def test_json_line_header_then_fields_in_order():
    line = encode_line(
        level="info", moment=WHEN, instance="i", fields=[("b", 1), ("a", "x")], as_json=True
    )
    assert (
        line
        == '{"level":"info","time":"2018-07-30T12:00:01.000005Z","instance":"i","b":1,"a":"x"}\n'
    )
    assert encode_line(level="warn", moment=WHEN, instance="i", fields=[], as_json=True) == (
        '{"level":"warn","time":"2018-07-30T12:00:01.000005Z","instance":"i"}\n'
    )


def test_a_variable_named_like_a_header_key_does_not_hide_it():
    line = encode_line(
        level="error", moment=WHEN, instance="i", fields=[("level", "fake")], as_json=True
    )
    assert line.startswith('{"level":"error",')
    assert line.endswith(',"level":"fake"}\n')


def test_console_line():
    line = encode_line(
        level="info", moment=WHEN, instance="i", fields=[("a", 1), ("b", "x")], as_json=False
    )
    assert line == '2018-07-30T12:00:01.000005Z\tinfo\ti\t{"a": 1, "b": "x"}\n'
    assert encode_line(level="info", moment=WHEN, instance="i", fields=[], as_json=False) == (
        "2018-07-30T12:00:01.000005Z\tinfo\ti\n"
    )


def test_non_ascii_text_stays_valid_json():
    line = encode_line(
        level="info", moment=WHEN, instance="i", fields=[("u", "żółw")], as_json=True
    )
    assert json.loads(line)["u"] == "żółw"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (None, None),
        (True, True),
        (7, 7),
        (0.5, 0.5),
        (float("nan"), "NaN"),
        (float("-inf"), "-Inf"),
        ("s", "s"),
        (datetime.timedelta(milliseconds=2, microseconds=500), "2.5ms"),
        (WHEN, "2018-07-30T12:00:01.000005Z"),
        (bytes([127, 0, 0, 1]), "127.0.0.1"),
        (ipaddress.ip_address("10.1.1.1"), "10.1.1.1"),
        (b"\x00\x01", "AAE="),
        ({"app": "reviews", "n": 1}, {"app": "reviews", "n": 1}),
        ((1, "a"), [1, "a"]),
    ],
)
def test_values(value, written):
    assert jsonable(value) == written


def test_format_duration():
    assert format_duration(datetime.timedelta(0)) == "0s"
    assert format_duration(datetime.timedelta(microseconds=999)) == "999µs"
    assert format_duration(datetime.timedelta(seconds=61, milliseconds=5)) == "1m1.005s"
    assert format_duration(datetime.timedelta(hours=2, minutes=3)) == "2h3m0s"


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=17),
    st.timedeltas(),
    st.datetimes(timezones=st.just(datetime.UTC)),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
)


@given(st.dictionaries(st.text(max_size=6), _VALUES, max_size=8), st.booleans())
def test_a_line_is_json_dumps_of_its_jsonable_fields(fields, as_json):
    """The encoder's shortcuts (common types inline, encoders built once) write what
    json.dumps of every field's jsonable value writes."""
    items = sorted(fields.items())
    line = encode_line(level="info", moment=WHEN, instance="a", fields=items, as_json=as_json)
    body = {name: jsonable(value) for name, value in items}
    if as_json:
        head = {"level": "info", "time": format_time(WHEN), "instance": "a"}
        want = json.dumps(head, separators=(",", ":"))
        if body:
            want = want[:-1] + "," + json.dumps(body, separators=(",", ":"))[1:]
    else:
        want = f"{format_time(WHEN)}\tinfo\ta"
        if body:
            want += "\t" + json.dumps(body, separators=(", ", ": "))
    assert line == want + "\n"


_NAMES = st.sampled_from(["a", "b", "level", "time", "ü", "x y", "z"])


@st.composite
def _streams(draw: st.DrawFn) -> list[tuple[str, dict[str, object]]]:
    """Log entries as Mixer hands them over: each entry's variables are the previous
    entry's dict with a few values replaced (the rest the very same objects), now and then
    with a name added or dropped; the level changes too."""
    variables: dict[str, object] = draw(st.dictionaries(_NAMES, _VALUES, max_size=5))
    stream = []
    for _ in range(draw(st.integers(1, 8))):
        variables = {**variables, **draw(st.dictionaries(_NAMES, _VALUES, max_size=3))}
        drop: int = draw(st.integers(0, 3))
        if variables and drop == 0:
            variables.pop(draw(st.sampled_from(sorted(variables))))
        level: str = draw(st.sampled_from(["info", "warn"]))
        stream.append((level, variables))
    return stream


@given(_streams(), st.booleans())
def test_a_line_encoders_stream_is_encode_line_of_each_entry(stream, as_json):
    """LineEncoder re-encodes only the values that are other objects than the line
    before's; every line must still be what encode_line writes from scratch."""
    encoder = LineEncoder(as_json=as_json)
    for i, (level, variables) in enumerate(stream):
        moment = WHEN + datetime.timedelta(microseconds=i)
        want = encode_line(
            level=level,
            moment=moment,
            instance="accesslog.istio-system",
            fields=sorted(variables.items()),
            as_json=as_json,
        )
        got = encoder.encode(
            level=level, moment=moment, instance="accesslog.istio-system", variables=variables
        )
        assert got == want


def test_a_line_encoder_reencodes_a_value_replaced_by_an_equal_object():
    """Identity, not equality, decides reuse: a new object is encoded even if equal."""
    encoder = LineEncoder(as_json=True)
    first = {"n": 1, "t": WHEN}
    encoder.encode(level="info", moment=WHEN, instance="i", variables=first)
    later = WHEN + datetime.timedelta(seconds=1)
    line = encoder.encode(level="info", moment=WHEN, instance="i", variables={**first, "t": later})
    assert json.loads(line)["t"] == format_time(later)
