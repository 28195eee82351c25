"""Go text/template's syntax tree and its parser.

Supported: text, actions with pipelines (`a | b c`), parenthesised pipelines, fields and
field chains (`.A.B`, `$x.A`, `(pipe).A`), variables (`$x := ...`, `$x = ...`), literals,
`if`/`else if`/`else`, `range` (with one or two variables), `with`/`else with`, `define`,
`template` and `block`, `break` and `continue`; what Istio's injection templates use, and
more. Anything else is refused with the template's name and line.
"""

from __future__ import annotations

import ast
import dataclasses

from pkg.gotemplate.lexer import TemplateSyntaxError, Tok, Token, tokenize


@dataclasses.dataclass
class Text:
    text: str


@dataclasses.dataclass
class Field:
    names: tuple[str, ...]  # .A.B -> ("A", "B")


@dataclasses.dataclass
class Variable:
    name: str  # "$" or "$x"
    names: tuple[str, ...] = ()  # $x.A.B


@dataclasses.dataclass
class Identifier:
    name: str  # a function


@dataclasses.dataclass
class Dot:
    pass


@dataclasses.dataclass
class Literal:
    value: object  # None, bool, int, float, str


@dataclasses.dataclass
class Chain:
    node: object  # a parenthesised pipeline (or another term) followed by fields
    names: tuple[str, ...]


@dataclasses.dataclass
class Command:
    args: list[object]


@dataclasses.dataclass
class Pipeline:
    line: int
    decls: list[str]
    is_assign: bool  # `=` rather than `:=`
    commands: list[Command]


@dataclasses.dataclass
class Action:
    pipe: Pipeline


@dataclasses.dataclass
class Branch:
    kind: str  # if | range | with
    pipe: Pipeline
    body: list[object]
    otherwise: list[object] | None


@dataclasses.dataclass
class TemplateCall:
    name: str
    pipe: Pipeline | None
    line: int


@dataclasses.dataclass
class Break:
    pass


@dataclasses.dataclass
class Continue:
    pass


_KEYWORDS = {
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
}


class _Parser:
    def __init__(self, tokens: list[Token], name: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.name = name
        self.defined: dict[str, list[object]] = {}
        self.range_depth = 0

    # --- token helpers -------------------------------------------------------------------
    def peek(self, skip_space: bool = True) -> Token:
        j = self.i
        while skip_space and self.tokens[j].kind is Tok.SPACE:
            j += 1
        return self.tokens[j]

    def next(self, skip_space: bool = True) -> Token:
        while skip_space and self.tokens[self.i].kind is Tok.SPACE:
            self.i += 1
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, token: Token, message: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(f"template: {self.name}:{token.line}: {message}")

    def expect(self, kind: Tok, context: str) -> Token:
        token = self.next()
        if token.kind is not kind:
            raise self.error(token, f"unexpected {_show(token)} in {context}")
        return token

    # --- lists and control structures ----------------------------------------------------
    def parse(self) -> list[object]:
        body, stop = self.item_list()
        if stop != "EOF":
            raise self.error(self.tokens[self.i - 1], f"unexpected {{{{{stop}}}}}")
        return body

    def item_list(self) -> tuple[list[object], str]:
        """Items until {{end}}, {{else}} or EOF; returns them and which one stopped the list."""
        items: list[object] = []
        while True:
            token = self.next(skip_space=False)
            if token.kind is Tok.EOF:
                return items, "EOF"
            if token.kind is Tok.TEXT:
                items.append(Text(token.value))
                continue
            assert token.kind is Tok.LEFT
            head = self.peek()
            if head.kind is Tok.IDENT and head.value in _KEYWORDS:
                self.next()
                word = head.value
                if word == "end":
                    self.expect(Tok.RIGHT, "end")
                    return items, "end"
                if word == "else":
                    return items, "else"
                if word in ("if", "range", "with"):
                    items.append(self.branch(word, head))
                elif word in ("define", "block"):
                    node = self.define(word, head)
                    if node is not None:
                        items.append(node)
                elif word == "template":
                    items.append(self.template_call(head))
                elif word in ("break", "continue"):
                    if not self.range_depth:
                        raise self.error(head, f"{{{{{word}}}}} outside {{{{range}}}}")
                    self.expect(Tok.RIGHT, word)
                    items.append(Break() if word == "break" else Continue())
                continue
            items.append(Action(self.pipeline("command", allow_decl=True)))

    def branch(self, kind: str, head: Token) -> Branch:
        pipe = self.pipeline(kind, allow_decl=True)
        if kind == "range":
            self.range_depth += 1
        body, stop = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        otherwise: list[object] | None = None
        if stop == "else":
            nxt = self.peek()
            if nxt.kind is Tok.IDENT and nxt.value in ("if", "with") and kind in ("if", "with"):
                # {{else if ...}} / {{else with ...}}: a nested branch sharing this {{end}}.
                self.next()
                otherwise = [self.branch(nxt.value, nxt)]
                return Branch(kind, pipe, body, otherwise)
            self.expect(Tok.RIGHT, "else")
            otherwise, stop = self.item_list()
            if stop != "end":
                raise self.error(head, f"expected end; found {stop} in {kind}")
        elif stop != "end":
            raise self.error(head, f"unexpected EOF in {kind}")
        return Branch(kind, pipe, body, otherwise)

    def define(self, word: str, head: Token) -> object | None:
        name_token = self.next()
        if name_token.kind not in (Tok.STRING, Tok.RAW_STRING):
            raise self.error(name_token, f"name of {word} must be a string")
        name = _string(name_token)
        if word == "block":
            pipe = self.pipeline("block", allow_decl=False)
        else:
            self.expect(Tok.RIGHT, "define")
            pipe = None
        body, stop = self.item_list()
        if stop != "end":
            raise self.error(head, f"unexpected {stop} in {word}")
        self.defined[name] = body
        return TemplateCall(name, pipe, head.line) if word == "block" else None

    def template_call(self, head: Token) -> TemplateCall:
        name_token = self.next()
        if name_token.kind not in (Tok.STRING, Tok.RAW_STRING):
            raise self.error(name_token, "template name must be a string")
        if self.peek().kind is Tok.RIGHT:
            self.next()
            return TemplateCall(_string(name_token), None, head.line)
        return TemplateCall(
            _string(name_token), self.pipeline("template", allow_decl=False), head.line
        )

    # --- pipelines -----------------------------------------------------------------------
    def pipeline(self, context: str, *, allow_decl: bool, end: Tok = Tok.RIGHT) -> Pipeline:
        line = self.peek().line
        decls: list[str] = []
        is_assign = False
        if allow_decl and self.peek().kind is Tok.VARIABLE:
            save = self.i
            first = self.next()
            following = self.peek()
            if following.kind in (Tok.DECLARE, Tok.ASSIGN):
                self.next()
                decls, is_assign = [first.value], following.kind is Tok.ASSIGN
            elif following.kind is Tok.COMMA and context == "range":
                self.next()
                second = self.expect(Tok.VARIABLE, "range declaration")
                op = self.next()
                if op.kind not in (Tok.DECLARE, Tok.ASSIGN):
                    raise self.error(op, "expected := in range declaration")
                decls, is_assign = [first.value, second.value], op.kind is Tok.ASSIGN
            else:
                self.i = save
        commands: list[Command] = []
        while True:
            commands.append(self.command(context))
            token = self.next()
            if token.kind is end:
                break
            if token.kind is not Tok.PIPE:
                raise self.error(token, f"unexpected {_show(token)} in {context}")
        if not commands or not commands[0].args:
            raise self.error(self.tokens[self.i - 1], f"missing value for {context}")
        for command in commands[1:]:
            if isinstance(command.args[0], Literal):
                raise self.error(
                    self.tokens[self.i - 1], "non executable command in pipeline stage"
                )
        return Pipeline(line, decls, is_assign, commands)

    def command(self, context: str) -> Command:
        args: list[object] = []
        while True:
            token = self.peek()
            if token.kind in (Tok.RIGHT, Tok.PIPE, Tok.RPAREN):
                break
            args.append(self.operand(context))
        if not args:
            raise self.error(self.peek(), f"empty command in {context}")
        return Command(args)

    def operand(self, context: str) -> object:
        node = self.term(context)
        names: list[str] = []
        while self.peek(skip_space=False).kind is Tok.FIELD:
            names.append(self.next(skip_space=False).value)
        if not names:
            return node
        if isinstance(node, Field):
            return Field(node.names + tuple(names))
        if isinstance(node, Variable):
            return Variable(node.name, node.names + tuple(names))
        if isinstance(node, Literal):
            raise self.error(self.peek(), f"unexpected . after term {node.value!r}")
        return Chain(node, tuple(names))

    def term(self, context: str) -> object:
        token = self.next()
        kind = token.kind
        if kind is Tok.FIELD:
            return Field((token.value,))
        if kind is Tok.DOT:
            return Dot()
        if kind is Tok.VARIABLE:
            return Variable(token.value)
        if kind is Tok.IDENT:
            if token.value == "nil":
                return Literal(None)
            if token.value in ("true", "false"):
                return Literal(token.value == "true")
            if token.value in _KEYWORDS:
                raise self.error(token, f"unexpected keyword {token.value} in {context}")
            return Identifier(token.value)
        if kind in (Tok.STRING, Tok.RAW_STRING):
            return Literal(_string(token))
        if kind is Tok.CHAR:
            return Literal(ord(ast.literal_eval(token.value)))
        if kind is Tok.NUMBER:
            return Literal(_number(token.value))
        if kind is Tok.LPAREN:
            return self.pipeline("parenthesized pipeline", allow_decl=False, end=Tok.RPAREN)
        raise self.error(token, f"unexpected {_show(token)} in {context}")


def _string(token: Token) -> str:
    if token.kind is Tok.RAW_STRING:
        return token.value
    return ast.literal_eval(token.value)


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    try:
        return int(clean, 0)
    except ValueError:
        return float(clean)


def _show(token: Token) -> str:
    return {Tok.RIGHT: '"}}"', Tok.EOF: "EOF"}.get(token.kind, f"<{token.value}>")


def parse(text: str, name: str = "template") -> tuple[list[object], dict[str, list[object]]]:
    """The tree of `text` and the templates it defines."""
    parser = _Parser(tokenize(text, name), name)
    body = parser.parse()
    return body, parser.defined
