"""The YAML reader: Kubernetes' scalars, no exception but YAMLError, bounded work."""

from __future__ import annotations

import pytest
import yaml

from pkg.config import yamlstream
from pkg.config.yamlstream import Invalid


def one(text: str):
    (document,) = yamlstream.documents(text)
    return document


def test_scalars_read_as_kubectl_reads_them():
    assert one("a: [1, -2, 0x1f, 1_000, 1.5, .5, 1e3, 1.0e3, -1E-2, true, no, ~]")["a"] == [
        1,
        -2,
        31,
        1000,
        1.5,
        0.5,
        1000.0,
        1000.0,
        -0.01,
        True,
        False,
        None,
    ]
    # go-yaml has no timestamps and no base-60 numbers: both stay strings.
    assert one("a: [2020-01-01, 2020-02-30, 2001-12-14T21:59:43Z, 1:30]")["a"] == [
        "2020-01-01",
        "2020-02-30",
        "2001-12-14T21:59:43Z",
        "1:30",
    ]
    assert one("a: !!binary aGVs\n  bG8=")["a"] == "aGVsbG8="
    assert one("a: !!timestamp 2020-01-01")["a"] == "2020-01-01"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: !!int abc", "is not an integer"),
        ("a: !!int ''", "is not an integer"),
        ("a: !!bool maybe", "is not a boolean"),
        ("a: !!float nope", "is not a number"),
        ("a: !!timestamp 2020-13-45", "is not a timestamp"),
        ("a: !!binary '!!'", "is not base64 data"),
        ("a: !!omap [b: 1]", "is a YAML !!omap, which has no JSON form"),
        ("a: !custom x", "has the tag '!custom', which is not a YAML core type"),
        ("a: " + "9" * 4301, "is an integer of 4301 digits (at most 4300)"),
    ],
)
def test_scalars_without_a_value_become_invalid_in_place(text: str, reason: str):
    value = one(text)["a"]
    assert isinstance(value, Invalid)
    assert value.reason.startswith(reason)
    assert value.line == 1
    assert value.column == 4


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: " + "[" * 65 + "]" * 65, "nested deeper than 64 levels"),
        ("&a [*a]", "alias *a refers to itself"),
        ("a: &x {b: [*x]}", "alias *x refers to itself"),
        ("a: *nowhere", "found undefined alias"),
    ],
)
def test_unbounded_documents_are_yaml_errors(text: str, reason: str):
    with pytest.raises(yaml.YAMLError) as caught:
        list(yamlstream.documents(text))
    assert reason in str(caught.value)


def test_deep_but_bounded_nesting_loads():
    assert one("a: " + "[" * 60 + "]" * 60)["a"] is not None


def test_aliases_that_stay_small_are_fine():
    assert one("a: &x [1, 2]\nb: *x\nc: [*x, *x]")["c"] == [[1, 2], [1, 2]]


def test_documents_before_a_syntax_error_are_yielded():
    stream = yamlstream.documents("a: 1\n---\nb: [\n")
    assert next(stream) == {"a": 1}
    with pytest.raises(yaml.YAMLError):
        next(stream)


def test_dump_quotes_what_a_reader_would_misread():
    data = {"a": "1e3", "b": "2020-01-01", "c": "1:30", "d": "yes", "e": "plain", "f": 2.5}
    text = yamlstream.dump(data)
    assert one(text) == data
    assert yaml.safe_load(text) == data
