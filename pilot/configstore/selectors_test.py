"""Label and field selectors: every form Kubernetes accepts, and the refusals."""

from __future__ import annotations

import pytest

from pilot.configstore import selectors

LABELS = {
    "a": {"app": "reviews", "version": "v1"},
    "b": {"app": "reviews", "version": "v2", "replicas": "3"},
    "c": {"app": "ratings", "canary": "true"},
    "d": {},
}


def matching(label_selector: str = "", field_selector: str = "") -> set[str]:
    selector = selectors.parse(label_selector, field_selector)
    return {
        name
        for name, labels in LABELS.items()
        if selector.matches({"metadata": {"name": name, "namespace": "ns", "labels": labels}})
    }


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("", {"a", "b", "c", "d"}),
        ("app=reviews", {"a", "b"}),
        ("app==reviews", {"a", "b"}),
        ("app!=reviews", {"c", "d"}),  # != also matches objects without the label
        ("version in (v1,v3)", {"a"}),
        ("version in (v1, v2)", {"a", "b"}),
        ("version notin (v1)", {"b", "c", "d"}),
        ("canary", {"c"}),
        ("!canary", {"a", "b", "d"}),
        ("app=reviews,version=v2", {"b"}),
        ("app in (reviews),!replicas", {"a"}),
        ("replicas>2", {"b"}),
        ("replicas<2", set()),
        ("  app = reviews , version != v1 ", {"b"}),
        ("example.com/tier", set()),
    ],
)
def test_label_selector_forms(selector: str, names: set[str]):
    assert matching(selector) == names


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("metadata.name=a", {"a"}),
        ("metadata.name==a", {"a"}),
        ("metadata.name!=a", {"b", "c", "d"}),
        ("metadata.namespace=ns,metadata.name!=b", {"a", "c", "d"}),
        ("metadata.namespace=other", set()),
    ],
)
def test_field_selector_forms(selector: str, names: set[str]):
    assert matching(field_selector=selector) == names


def test_both_selectors_must_hold():
    assert matching("app=reviews", "metadata.name!=a") == {"b"}


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("app=reviews,", "found '', expected: identifier"),
        ("app in v1", "found 'v1', expected: '(' after 'in' or 'notin'"),
        ("app in ()", "the set of values must not be empty"),
        ("app reviews", "found 'reviews', expected: '=', '==', '!=', 'in', 'notin'"),
        ("-app=x", "invalid label key '-app'"),
        ("app=no way", "found 'way', expected: ',' or end of string"),
        ("app=" + "x" * 64, "invalid label value"),
        ("replicas>many", "must be an integer"),
        ("!", "found '', expected: identifier after '!'"),
    ],
)
def test_bad_label_selectors_say_why(selector: str, message: str):
    with pytest.raises(selectors.SelectorError, match="unable to parse requirement") as error:
        selectors.parse_labels(selector)
    assert message in str(error.value)


def test_field_selectors_only_know_the_metadata_labels():
    with pytest.raises(selectors.SelectorError) as error:
        selectors.parse_fields("spec.host=reviews")
    assert str(error.value) == (
        '"spec.host" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    with pytest.raises(selectors.SelectorError, match=r"can't understand 'metadata\.name'"):
        selectors.parse_fields("metadata.name")


def test_field_selector_values_unescape():
    [requirement] = selectors.parse_fields(r"metadata.name=a\,b\=c")
    assert requirement.value == "a,b=c"
