"""Go's text/template, in Python, for the templates Kubernetes tools keep in ConfigMaps.

    template = gotemplate.parse("inject", text, funcs={"isset": isset})
    output = template.execute(data)

Parsing refuses what Go refuses (with `TemplateSyntaxError`, naming the template and the
line); executing follows Go's rules (truth, fields, pipelines, variable scope, map order)
and raises `ExecError` where Go's Execute returns an error. The functions are Go's builtins
and Sprig's common ones (funcs.py); callers add their own, which win over both, as
`template.Funcs(sprig).Funcs(own)` does in Go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pkg.gotemplate import funcs as _funcs
from pkg.gotemplate.exec import State
from pkg.gotemplate.lexer import TemplateSyntaxError
from pkg.gotemplate.parser import parse as _parse
from pkg.gotemplate.values import Enum, ExecError, FieldError, StrMap, Struct

__all__ = [
    "Enum",
    "ExecError",
    "FieldError",
    "StrMap",
    "Struct",
    "Template",
    "TemplateSyntaxError",
    "parse",
]


class Template:
    def __init__(
        self,
        name: str,
        body: list[object],
        defined: Mapping[str, list[object]],
        funcs: Mapping[str, Callable[..., Any]],
    ) -> None:
        self.name = name
        self._body = body
        self._defined = dict(defined)
        self._funcs = funcs

    def execute(self, data: Any) -> str:
        state = State(self.name, self._defined, self._funcs)
        state.vars.append(("$", data))
        state.walk(data, self._body)
        return "".join(state.out)


def parse(name: str, text: str, funcs: Mapping[str, Callable[..., Any]] | None = None) -> Template:
    """Parse `text`; a function it calls must be a builtin, Sprig's, or in `funcs`."""
    table = {**_funcs.BUILTINS, **_funcs.SPRIG, **(funcs or {})}
    body, defined = _parse(text, name)
    _check_functions(name, body, defined, table)
    return Template(name, body, defined, table)


def _check_functions(
    name: str, body: list[object], defined: Mapping[str, list[object]], table: Mapping[str, Any]
) -> None:
    # Go resolves function names at parse time: an unknown one is a parse error.
    from pkg.gotemplate import parser as p

    def visit(node: object) -> None:
        if (
            isinstance(node, p.Identifier)
            and node.name not in table
            and node.name not in ("and", "or")
        ):
            raise TemplateSyntaxError(f'template: {name}: function "{node.name}" not defined')
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, (p.Action,)):
            visit(node.pipe)
        elif isinstance(node, p.Branch):
            visit(node.pipe)
            visit(node.body)
            if node.otherwise is not None:
                visit(node.otherwise)
        elif isinstance(node, p.TemplateCall):
            if node.pipe is not None:
                visit(node.pipe)
        elif isinstance(node, p.Pipeline):
            for command in node.commands:
                visit(command.args)
        elif isinstance(node, p.Chain):
            visit(node.node)

    visit(body)
    for template in defined.values():
        visit(template)
