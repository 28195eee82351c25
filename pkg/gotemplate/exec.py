"""Running a parsed template over data, with Go text/template's semantics.

Fields of a map read its keys (a missing one is the map's zero value), fields of a `Struct`
its fields and niladic methods; a pipeline's value is passed as the last argument of the
next command; `and`/`or` stop at the first deciding argument and return it; variables live
until the `end` of the control structure that declared them; `range` visits a map in the
order of its sorted keys. Errors name the template, the line and the function that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pkg.gotemplate import parser as p
from pkg.gotemplate.values import Enum, ExecError, StrMap, Struct, to_string, truth, type_name


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class State:
    def __init__(
        self,
        name: str,
        templates: Mapping[str, list[object]],
        funcs: Mapping[str, Callable[..., Any]],
    ) -> None:
        self.name = name
        self.templates = templates
        self.funcs = funcs
        self.vars: list[tuple[str, Any]] = []
        self.out: list[str] = []
        self.depth = 0
        self.line = 0

    def error(self, message: str) -> ExecError:
        return ExecError(f"template: {self.name}:{self.line}: {message}")

    # --- items ---------------------------------------------------------------------------
    def walk(self, dot: Any, items: list[object]) -> None:
        for item in items:
            if isinstance(item, p.Text):
                self.out.append(item.text)
            elif isinstance(item, p.Action):
                value = self.pipeline(dot, item.pipe)
                if not item.pipe.decls:
                    self.out.append(to_string(value))
            elif isinstance(item, p.Branch):
                self.branch(dot, item)
            elif isinstance(item, p.TemplateCall):
                self.call_template(dot, item)
            elif isinstance(item, p.Break):
                raise _Break
            elif isinstance(item, p.Continue):
                raise _Continue
            else:  # pragma: no cover - the parser makes no other node
                raise self.error(f"unknown node {item!r}")

    def branch(self, dot: Any, node: p.Branch) -> None:
        mark = len(self.vars)
        try:
            value = self.pipeline(dot, node.pipe, declare_range=node.kind == "range")
            if node.kind == "range":
                self.range(dot, node, value)
            elif truth(value):
                inner = len(self.vars)
                self.walk(value if node.kind == "with" else dot, node.body)
                del self.vars[inner:]
            elif node.otherwise is not None:
                self.walk(dot, node.otherwise)
        finally:
            del self.vars[mark:]

    def range(self, dot: Any, node: p.Branch, value: Any) -> None:
        decls = node.pipe.decls
        if value is None:
            items: list[tuple[Any, Any]] = []
        elif isinstance(value, Mapping):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        else:
            raise self.error(f"range can't iterate over {to_string(value)}")
        if not items:
            if node.otherwise is not None:
                self.walk(dot, node.otherwise)
            return
        mark = len(self.vars)
        for key, element in items:
            if len(decls) == 1:
                self.set_var(decls[0], element, declare=not node.pipe.is_assign)
            elif len(decls) == 2:
                self.set_var(decls[0], key, declare=not node.pipe.is_assign)
                self.set_var(decls[1], element, declare=not node.pipe.is_assign)
            try:
                self.walk(element, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[mark:]

    def call_template(self, dot: Any, node: p.TemplateCall) -> None:
        self.line = node.line
        body = self.templates.get(node.name)
        if body is None:
            raise self.error(f'no such template "{node.name}"')
        value = self.pipeline(dot, node.pipe) if node.pipe is not None else None
        self.depth += 1
        if self.depth > 100:
            raise self.error("exceeded maximum template depth (100)")
        saved = self.vars
        self.vars = [("$", value)]
        try:
            self.walk(value, body)
        finally:
            self.vars = saved
            self.depth -= 1

    # --- pipelines -----------------------------------------------------------------------
    def pipeline(self, dot: Any, pipe: p.Pipeline, *, declare_range: bool = False) -> Any:
        self.line = pipe.line
        value: Any = _NO_FINAL
        for command in pipe.commands:
            value = self.command(dot, command, value)
        if pipe.decls and not declare_range:
            self.set_var(pipe.decls[0], value, declare=not pipe.is_assign)
        return value

    def set_var(self, name: str, value: Any, *, declare: bool) -> None:
        if declare:
            self.vars.append((name, value))
            return
        for index in range(len(self.vars) - 1, -1, -1):
            if self.vars[index][0] == name:
                self.vars[index] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    def var(self, name: str) -> Any:
        for var_name, value in reversed(self.vars):
            if var_name == name:
                return value
        raise self.error(f"undefined variable: {name}")

    def command(self, dot: Any, command: p.Command, final: Any) -> Any:
        first, rest = command.args[0], command.args[1:]
        if isinstance(first, p.Identifier):
            return self.call(dot, first.name, rest, final)
        if rest or final is not _NO_FINAL:
            if isinstance(first, (p.Field, p.Variable, p.Chain)) and isinstance(first, p.Field):
                raise self.error(
                    f"{_describe(first)} has arguments but cannot be invoked as function"
                )
            raise self.error(f"can't give argument to non-function {_describe(first)}")
        return self.arg(dot, first)

    def call(self, dot: Any, name: str, args: list[object], final: Any) -> Any:
        if name in ("and", "or"):
            nodes = list(args)
            if not nodes and final is _NO_FINAL:
                raise self.error(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for node in nodes:
                value = self.arg(dot, node)
                if truth(value) != (name == "and"):
                    return value
            if final is not _NO_FINAL:
                value = final
            return value
        function = self.funcs.get(name)
        if function is None:
            raise self.error(f'function "{name}" not defined')
        values = [self.arg(dot, node) for node in args]
        if final is not _NO_FINAL:
            values.append(final)
        try:
            return function(*values)
        except ExecError as error:
            raise self.error(f"error calling {name}: {error}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as error:
            raise self.error(f"error calling {name}: {error}") from None

    def arg(self, dot: Any, node: object) -> Any:
        if isinstance(node, p.Literal):
            return node.value
        if isinstance(node, p.Dot):
            return dot
        if isinstance(node, p.Field):
            return self.fields(dot, node.names)
        if isinstance(node, p.Variable):
            return self.fields(self.var(node.name), node.names)
        if isinstance(node, p.Chain):
            return self.fields(self.arg(dot, node.node), node.names)
        if isinstance(node, p.Pipeline):
            mark = len(self.vars)
            try:
                return self.pipeline(dot, node)
            finally:
                del self.vars[mark:]
        if isinstance(node, p.Identifier):
            return self.call(dot, node.name, [], _NO_FINAL)
        raise self.error(f"can't evaluate {node!r}")  # pragma: no cover

    def fields(self, value: Any, names: tuple[str, ...]) -> Any:
        for name in names:
            value = self.field(value, name)
        return value

    def field(self, value: Any, name: str) -> Any:
        if value is None:
            return None  # Go: a missing (invalid) value's field is the zero value too
        if isinstance(value, Struct):
            try:
                return value.field(name)
            except ExecError as error:
                raise self.error(str(error)) from None
        if isinstance(value, StrMap):
            return value.get(name, "")
        if isinstance(value, Mapping):
            return value.get(name)
        if isinstance(value, Enum) and name == "String":
            return value.name
        raise self.error(f"can't evaluate field {name} in type {type_name(value)}")


class _NoFinal:
    def __repr__(self) -> str:
        return "<no final>"


_NO_FINAL: Any = _NoFinal()


def _describe(node: object) -> str:
    if isinstance(node, p.Field):
        return "." + ".".join(node.names)
    if isinstance(node, p.Variable):
        return node.name + "".join("." + n for n in node.names)
    return type(node).__name__
