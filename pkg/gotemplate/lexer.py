"""Go text/template's lexical grammar: text, and actions between `{{` and `}}`.

`{{- ` trims the whitespace before an action and ` -}}` the whitespace after it, as in Go;
`{{/* ... */}}` is a comment. Inside an action: fields (`.A.B`), variables (`$x`, `$`),
identifiers (functions and keywords), strings ("...", `raw`), numbers, `|`, `(`, `)`, `:=`,
`=` and `,`.
"""

from __future__ import annotations

import dataclasses
import enum
import re


class TemplateSyntaxError(ValueError):
    """A template that does not parse; the message names the template and the line."""


class Tok(enum.Enum):
    TEXT = "text"
    LEFT = "{{"
    RIGHT = "}}"
    FIELD = "field"  # .Name (one segment)
    DOT = "."
    VARIABLE = "variable"  # $ or $name
    IDENT = "identifier"
    STRING = "string"
    RAW_STRING = "raw string"
    CHAR = "char"
    NUMBER = "number"
    PIPE = "|"
    LPAREN = "("
    RPAREN = ")"
    DECLARE = ":="
    ASSIGN = "="
    COMMA = ","
    SPACE = "space"
    EOF = "EOF"


@dataclasses.dataclass(frozen=True)
class Token:
    kind: Tok
    value: str
    line: int


_NUMBER = re.compile(
    r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?)"
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = " \t\r\n"


def tokenize(text: str, name: str = "template") -> list[Token]:
    tokens: list[Token] = []
    position, line = 0, 1
    while position < len(text):
        start = text.find("{{", position)
        if start < 0:
            tokens.append(Token(Tok.TEXT, text[position:], line))
            break
        chunk = text[position:start]
        trim_left = (
            text.startswith("{{- ", start)
            or text.startswith("{{-\t", start)
            or text.startswith("{{-\n", start)
            or text.startswith("{{-\r", start)
        )
        if trim_left:
            chunk = chunk.rstrip(_SPACE)
        if chunk:
            tokens.append(Token(Tok.TEXT, chunk, line))
        line += text.count("\n", position, start)
        inner = start + (4 if trim_left else 2)
        # A comment: {{/* ... */}}, possibly with trim markers.
        probe = inner
        while probe < len(text) and text[probe] in _SPACE and trim_left:
            probe += 1
        if text.startswith("/*", probe):
            close = text.find("*/", probe + 2)
            if close < 0:
                raise TemplateSyntaxError(f"template: {name}:{line}: unclosed comment")
            after = close + 2
            trim_right = False
            rest = after
            while rest < len(text) and text[rest] in _SPACE:
                rest += 1
            if text.startswith("-}}", rest) and rest > after:
                trim_right, after = True, rest + 3
            elif text.startswith("}}", after):
                after += 2
            else:
                raise TemplateSyntaxError(
                    f"template: {name}:{line}: comment ends before closing delimiter"
                )
            line += text.count("\n", start, after)
            position = after
            if trim_right:
                while position < len(text) and text[position] in _SPACE:
                    line += text[position] == "\n"
                    position += 1
            continue
        tokens.append(Token(Tok.LEFT, "{{", line))
        position, line = _lex_action(text, inner, line, name, tokens)
    tokens.append(Token(Tok.EOF, "", line))
    return tokens


def _lex_action(text: str, i: int, line: int, name: str, out: list[Token]) -> tuple[int, int]:
    """Tokens of one action from i; returns the position after `}}` (and trimmed space)."""
    depth = 0
    while True:
        if i >= len(text):
            raise TemplateSyntaxError(f"template: {name}:{line}: unclosed action")
        ch = text[i]
        if ch in _SPACE:
            j = i
            while j < len(text) and text[j] in _SPACE:
                j += 1
            if text.startswith("-}}", j):
                line += text.count("\n", i, j)
                out.append(Token(Tok.RIGHT, "}}", line))
                j += 3
                while j < len(text) and text[j] in _SPACE:
                    line += text[j] == "\n"
                    j += 1
                return j, line
            line += text.count("\n", i, j)
            out.append(Token(Tok.SPACE, " ", line))
            i = j
            continue
        if text.startswith("}}", i):
            if depth:
                raise TemplateSyntaxError(f"template: {name}:{line}: unclosed left paren")
            out.append(Token(Tok.RIGHT, "}}", line))
            return i + 2, line
        if ch == "|":
            out.append(Token(Tok.PIPE, ch, line))
            i += 1
        elif ch == "(":
            depth += 1
            out.append(Token(Tok.LPAREN, ch, line))
            i += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise TemplateSyntaxError(f"template: {name}:{line}: unexpected right paren")
            out.append(Token(Tok.RPAREN, ch, line))
            i += 1
        elif ch == ",":
            out.append(Token(Tok.COMMA, ch, line))
            i += 1
        elif text.startswith(":=", i):
            out.append(Token(Tok.DECLARE, ":=", line))
            i += 2
        elif ch == "=":
            out.append(Token(Tok.ASSIGN, "=", line))
            i += 1
        elif ch == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                if text[j] == "\\":
                    j += 1
                if j < len(text) and text[j] == "\n":
                    raise TemplateSyntaxError(
                        f"template: {name}:{line}: unterminated quoted string"
                    )
                j += 1
            if j >= len(text):
                raise TemplateSyntaxError(f"template: {name}:{line}: unterminated quoted string")
            out.append(Token(Tok.STRING, text[i : j + 1], line))
            i = j + 1
        elif ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise TemplateSyntaxError(
                    f"template: {name}:{line}: unterminated raw quoted string"
                )
            out.append(Token(Tok.RAW_STRING, text[i + 1 : j], line))
            line += text.count("\n", i, j)
            i = j + 1
        elif ch == "'":
            j = text.find("'", i + 1)
            if j < 0:
                raise TemplateSyntaxError(
                    f"template: {name}:{line}: unterminated character constant"
                )
            out.append(Token(Tok.CHAR, text[i : j + 1], line))
            i = j + 1
        elif ch == "$":
            match = _IDENT.match(text, i + 1)
            end = match.end() if match else i + 1
            out.append(Token(Tok.VARIABLE, text[i:end], line))
            i = end
        elif ch == ".":
            match = _IDENT.match(text, i + 1)
            if match:
                out.append(Token(Tok.FIELD, match.group(), line))
                i = match.end()
            elif i + 1 < len(text) and text[i + 1].isdigit():
                number = _NUMBER.match(text, i)
                assert number
                out.append(Token(Tok.NUMBER, number.group(), line))
                i = number.end()
            else:
                out.append(Token(Tok.DOT, ".", line))
                i += 1
        elif ch.isdigit() or (
            ch in "+-" and i + 1 < len(text) and (text[i + 1].isdigit() or text[i + 1] == ".")
        ):
            number = _NUMBER.match(text, i)
            assert number
            out.append(Token(Tok.NUMBER, number.group(), line))
            i = number.end()
        elif ch.isalpha() or ch == "_":
            match = _IDENT.match(text, i)
            assert match
            out.append(Token(Tok.IDENT, match.group(), line))
            i = match.end()
        else:
            raise TemplateSyntaxError(f"template: {name}:{line}: unexpected {ch!r} in action")
