"""Messages print as Istio's: Go's verbs, the origin with file:line, order and dedup."""

from __future__ import annotations

import re

from istioctl.analyze import diag
from istioctl.analyze.model import Origin


def test_every_message_type_fills_its_template():
    for message_type in diag.catalog().values():
        assert message_type.code.startswith("IST")
        assert len(message_type.code) == 7
        verbs = re.findall(r"%[svqdt]", message_type.template)
        assert len(verbs) == len(message_type.args), message_type.name
        assert "%" not in diag.go_format(message_type.template, ["x"] * len(verbs))


def test_go_verbs():
    assert diag.go_format("%s|%v|%q|%d|%t|%%", ["a", ["b", "c"], 'd"e', 7, True]) == (
        'a|[b c]|"d\\"e"|7|true|%'
    )
    assert diag.go_format("%v", [[80, 443]]) == "[80 443]"


def origin(**kw: object) -> Origin:
    defaults = dict(kind="VirtualService", name="reviews", namespace="default", file="f.yaml",
                    line=3, lines={"spec.http[0].route": 9, "spec.hosts": 5})  # fmt: skip
    return Origin(**{**defaults, **kw})  # type: ignore[arg-type]


def test_render_with_the_line_of_the_field_or_its_nearest_parent():
    kind = diag.catalog()["ReferencedResourceNotFound"]
    message = diag.Message(kind, ("host", "nowhere"), origin(), "spec.http[0].route[1].destination.host")  # fmt: skip
    assert message.render() == (
        'Error [IST0101] (VirtualService reviews.default f.yaml:9) Referenced host not found: "nowhere"'
    )
    assert diag.Message(kind, ("a", "b"), origin(), "status.x").origin_text() == (
        " (VirtualService reviews.default f.yaml:3)"
    )
    assert diag.Message(kind, ("a", "b"), origin(file=""), "").origin_text() == (
        " (VirtualService reviews.default)"
    )
    assert diag.Message(kind, ("a", "b"), origin(kind="Namespace", namespace="", name="shop")).origin_text().startswith(" (Namespace shop")  # fmt: skip
    assert "\033[1;31mError\033[0m [IST0101]" in message.render(color=True)


def test_sorted_by_resource_then_code_and_deduplicated():
    catalog = diag.catalog()
    b = diag.Message(catalog["SchemaValidationError"], ("x",), origin(name="b"))
    a2 = diag.Message(catalog["SchemaValidationError"], ("x",), origin(name="a"))
    a1 = diag.Message(catalog["ReferencedResourceNotFound"], ("h", "x"), origin(name="a"))
    assert diag.sorted_unique([b, a2, a1, b]) == [a1, a2, b]


def test_suppressions_match_friendly_names_with_wildcards():
    message = diag.Message(
        diag.catalog()["UnknownAnnotation"], ("x",), origin(kind="Pod", name="web-1")
    )
    assert diag.Suppression.parse("IST0108=Pod web-1.default").matches(message)
    assert diag.Suppression.parse("IST0108=Pod *.default").matches(message)
    assert diag.Suppression.parse("IST0108=Pod web-*").matches(message)
    assert not diag.Suppression.parse("IST0108=Pod *.other").matches(message)
    assert not diag.Suppression.parse("IST0101=Pod *").matches(message)
