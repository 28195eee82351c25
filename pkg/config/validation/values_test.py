"""The JSON-value walk every document goes through first."""

from __future__ import annotations

from pkg.config.validation.result import ValidationResult
from pkg.config.validation.values import MAX_PROBLEMS, check_json_value
from pkg.config.yamlstream import Invalid


def problems(document) -> list[str]:
    out = ValidationResult()
    check_json_value(document, out)
    return [str(p) for p in out.errors]


def test_plain_json_passes():
    assert problems({"a": [1, 2.5, "x", None, True, {"b": {}}], "80": 1}) == []


def test_each_odd_value_is_named_with_its_path():
    document = {
        "spec": {
            "nan": float("nan"),
            "big": 10**400,
            "bad": Invalid("abc", "is not an integer", 3, 7),
            "list": [b"bytes", {1.5, 2.5}],
            "text": "\ud800",
        }
    }
    assert problems(document) == [
        "spec.nan: nan is not a JSON number",
        "spec.big: an integer of 1329 bits is too large",
        "spec.bad: 'abc' is not an integer (line 3, column 7)",
        "spec.list[0]: a bytes has no JSON form",
        "spec.list[1]: a set has no JSON form",
        "spec.text: is not valid Unicode (a lone surrogate)",
    ]


def test_keys_are_checked_too():
    assert problems({"spec": {10**400: 1, ("a", "b"): 2, 80: 3}}) == [
        "spec: a key that is a int has no JSON form",
        "spec: a key that is a tuple has no JSON form",
    ]


def test_depth_is_bounded_without_recursion():
    deep: list = []
    for _ in range(100_000):  # far past Python's recursion limit
        deep = [deep]
    (problem,) = problems({"spec": deep})
    assert problem.endswith("nested deeper than 64 levels")


def test_a_flood_of_problems_is_summarised():
    found = problems({"spec": [float("nan")] * 1000})
    assert len(found) == MAX_PROBLEMS + 1
    assert found[-1] == f"and {1000 - MAX_PROBLEMS} more values like these"
