"""JSON merge patch: the RFC 7386 examples that matter for metadata and specs."""

from __future__ import annotations

import copy

import pytest

from pilot.configstore.mergepatch import merge_patch


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_rfc7386_examples(target, patch, expected):
    assert merge_patch(target, patch) == expected


def test_target_is_not_changed():
    target = {"metadata": {"labels": {"app": "reviews"}}, "spec": {"hosts": ["a"]}}
    before = copy.deepcopy(target)
    merged = merge_patch(target, {"metadata": {"labels": {"version": "v2"}}})
    assert target == before
    assert merged["metadata"]["labels"] == {"app": "reviews", "version": "v2"}
