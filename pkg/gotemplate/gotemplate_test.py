"""Go text/template semantics, each case with the output Go's Execute gives for it."""

from __future__ import annotations

from typing import Any

import pytest

from pkg import gotemplate
from pkg.gotemplate import StrMap


def render(text: str, data: Any = None, **funcs: Any) -> str:
    return gotemplate.parse("t", text, funcs).execute(data)


@pytest.mark.parametrize(
    ("text", "data", "want"),
    [
        ("a {{- ` b ` -}} c", None, "a b c"),
        ("x\n  {{- /* a comment */ -}}\n  y", None, "xy"),
        ("{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}", {"a": 0, "b": "x"}, "B"),
        ("{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}", {"b": 2, "a": 1}, "a=1;b=2;"),
        ("{{ range . }}{{ . }}{{ else }}none{{ end }}", [], "none"),
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", None, "2"),
        ("{{ with .a }}{{ . }}{{ else }}empty{{ end }}", {"a": ""}, "empty"),
        ("{{ or .a .b }} {{ and 1 0 2 }} {{ and 1 2 }}", {"a": "", "b": "y"}, "y 0 2"),
        ("{{ .missing }} {{ .m.k }} {{ index .m `k` }}|", {"m": StrMap()}, "<no value>  |"),
        ('{{ printf "%s-%d-%t-%q" "a" 3 true "x\\"y" }}', None, 'a-3-true-"x\\"y"'),
        ("{{ 1.0 }} {{ 2.5 }} {{ 1e21 }} {{ .f }}", {"f": 4.0}, "1 2.5 1e+21 4"),
        ('{{ define "d" }}[{{ . }}]{{ end }}{{ template "d" .x }}', {"x": "in"}, "[in]"),
        (
            '{{ "abc" | trunc 2 | quote }} {{ "" | default "d" }} {{ 0 | default 7 }}',
            None,
            '"ab" d 7',
        ),
        ("{{ list 1 2 | join `,` }} {{ len (list 1 2 3) }}", None, "1,2 3"),
        ("{{ (.a).b }} {{ $.a.b }}", {"a": {"b": "c"}}, "c c"),
        (
            "{{ eq .x `a` `b` }} {{ ne 1 2 }} {{ lt 1 2 }} {{ not .x }}",
            {"x": "b"},
            "true true true false",
        ),
        ("{{ toYaml .v | nindent 2 }}", {"v": {"b": 1, "a": [1]}}, "\n  a:\n  - 1\n  b: 1\n  "),
        (
            "{{ range $i, $c := .l }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $c }}{{ end }}",
            {"l": ["x", "y"]},
            "x",
        ),
        ("{{ print 1 2 `a` 3 }}", None, "1 2a3"),
    ],
)
def test_semantics(text: str, data: Any, want: str) -> None:
    assert render(text, data) == want


def test_own_functions_win_over_sprig() -> None:
    assert (
        render('{{ contains "a" "cat" }}', None, contains=lambda needle, hay: needle in hay)
        == "true"
    )


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(
        gotemplate.TemplateSyntaxError, match=r"template: t:2: unexpected EOF in if"
    ):
        gotemplate.parse("t", "x\n{{ if .a }}y")
    with pytest.raises(gotemplate.TemplateSyntaxError, match='function "nope" not defined'):
        gotemplate.parse("t", "{{ nope 1 }}")
    with pytest.raises(gotemplate.TemplateSyntaxError, match="unclosed action"):
        gotemplate.parse("t", "{{ .a ")


def test_execution_errors_name_the_line_and_function() -> None:
    with pytest.raises(
        gotemplate.ExecError, match=r"template: t:2: error calling index: index out of range: 5"
    ):
        render("\n{{ index .l 5 }}", {"l": [1]})
    with pytest.raises(gotemplate.ExecError, match="incompatible types for comparison"):
        render("{{ eq 1 `a` }}")
    with pytest.raises(gotemplate.ExecError, match="undefined variable"):
        render("{{ $x = 1 }}")
