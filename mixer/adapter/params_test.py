"""ParamReader: typed fields from a handler's params, every problem with its field path."""

from __future__ import annotations

import datetime

import pytest

from mixer.adapter.params import ParamReader, duration_from_text, format_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", datetime.timedelta(seconds=10)),
        ("500ms", datetime.timedelta(milliseconds=500)),
        ("1h30m", datetime.timedelta(hours=1, minutes=30)),
        ("1.5s", datetime.timedelta(seconds=1.5)),
        ("0", datetime.timedelta(0)),
        ("0s", datetime.timedelta(0)),
        ("-2s", datetime.timedelta(seconds=-2)),
        ("250us", datetime.timedelta(microseconds=250)),
    ],
)
def test_go_durations(text: str, expected: datetime.timedelta):
    assert duration_from_text(text) == expected


@pytest.mark.parametrize("text", ["", "10", "ten seconds", "1d", "s"])
def test_malformed_durations(text: str):
    assert duration_from_text(text) is None


def test_format_duration_reads_like_yaml():
    assert format_duration(datetime.timedelta(seconds=300)) == "300s"
    assert format_duration(datetime.timedelta(milliseconds=250)) == "250ms"
    assert format_duration(datetime.timedelta(seconds=1.5)) == "1.5s"


def test_nested_objects_report_full_paths():
    reader = ParamReader(
        {
            "quotas": [
                {"name": "a", "maxAmount": 5000.0, "validDuration": "1s"},
                {"name": 7, "maxAmount": "x", "overrides": [{"dimensions": {"a": [1]}}]},
            ]
        }
    )
    values = []
    for quota in reader.objects("quotas"):
        values.append((quota.string("name"), quota.integer("maxAmount")))
        for override in quota.objects("overrides"):
            override.string_map("dimensions")
            override.finish()
        quota.finish()
    reader.finish()
    assert values == [("a", 5000), ("", 0)]
    assert [str(e) for e in reader.errors] == [
        "quotas[0].validDuration: unknown field (known: maxAmount, name, overrides)",
        "quotas[1].name: expected a string, got an integer",
        "quotas[1].maxAmount: expected an integer, got 'x'",
        "quotas[1].overrides[0].dimensions.a: expected a string, got a list",
    ]


def test_scalars_in_string_maps_read_as_yaml_text():
    reader = ParamReader({"dimensions": {"code": 200.0, "internal": True, "ratio": 0.5}})
    assert reader.string_map("dimensions") == {"code": "200", "internal": "true", "ratio": "0.5"}
    assert reader.errors == []


def test_enums_by_name_or_number():
    reader = ParamReader({"a": "ROLLING_WINDOW", "b": 1.0, "c": 5})
    choices = ("FIXED_WINDOW", "ROLLING_WINDOW")
    assert reader.enum("a", choices, "FIXED_WINDOW") == "ROLLING_WINDOW"
    assert reader.enum("b", choices, "FIXED_WINDOW") == "ROLLING_WINDOW"
    assert reader.enum("c", choices, "FIXED_WINDOW") == "FIXED_WINDOW"
    assert [str(e) for e in reader.errors] == [
        "c: expected one of FIXED_WINDOW, ROLLING_WINDOW, got 5"
    ]


def test_not_an_object():
    reader = ParamReader(["a"], path="status")
    assert reader.string("code") == ""
    assert [str(e) for e in reader.errors] == ["status: expected an object, got a list"]


def test_null_means_unset():
    reader = ParamReader({"ttl": None, "overrides": None})
    assert reader.duration("ttl", datetime.timedelta(seconds=3)) == datetime.timedelta(seconds=3)
    assert reader.strings("overrides") == []
    reader.finish()
    assert reader.errors == []
