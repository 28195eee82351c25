"""Tokens of CEXL, which are Go's: identifiers, decimal numbers, Go-quoted strings, operators."""

from __future__ import annotations

import dataclasses
import enum
import re

from pkg.lang.errors import LangError, Position


class Kind(enum.Enum):
    IDENT = "identifier"
    INT = "integer"
    FLOAT = "number"
    STRING = "string"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    LBRACK = "["
    RBRACK = "]"
    COMMA = ","
    DOT = "."
    EOF = "end of expression"


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # as written
    value: str | int | float | None  # an unquoted string or a number; None otherwise
    pos: Position

    def describe(self) -> str:
        if self.kind is Kind.EOF:
            return "end of expression"
        return f"{self.kind.value} {self.text}" if self.kind in _NAMED else repr(self.text)


_NAMED = {Kind.IDENT, Kind.INT, Kind.FLOAT, Kind.STRING, Kind.OP}

# Every Go operator, longest first, so that unsupported ones get a clear error from the parser
# rather than an odd one from the lexer.
_OPERATORS = (
    "&^=", "<<=", ">>=", "...", "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "&^", "<-",
    "++", "--", ":=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
    "+", "-", "*", "/", "%", "&", "|", "^", "<", ">", "=", "!", ":", ";", "{", "}",
)  # fmt: skip
_PUNCTUATION = {
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    "[": Kind.LBRACK,
    "]": Kind.RBRACK,
    ",": Kind.COMMA,
    ".": Kind.DOT,
}
# Go's decimal literals; hexadecimal, octal, binary and `_` separators are refused, as Istio's
# strconv.ParseInt(text, 10, 64) refuses them.
_NUMBER = re.compile(
    r"[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+"
)
_DIGITS = frozenset("0123456789")
_GLUED = re.compile(r"[\w.]*")
_NUMERIC_ESCAPES = {"x": (2, 16), "u": (4, 16), "U": (8, 16)}  # digits, base; octal: (3, 8)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.line_start = 0

    def position(self, offset: int) -> Position:
        return Position(self.line, offset - self.line_start + 1)

    def error(self, message: str, offset: int) -> LangError:
        return LangError(message, self.position(offset))

    def tokens(self) -> list[Token]:
        out = []
        text = self.text
        while True:
            self.skip_space()
            start = self.i
            if start >= len(text):
                out.append(Token(Kind.EOF, "", None, self.position(start)))
                return out
            ch = text[start]
            if ch.isalpha() or ch == "_":
                out.append(self.identifier())
            elif ch in _DIGITS or (ch == "." and text[start + 1 : start + 2] in _DIGITS):
                out.append(self.number())
            elif ch in "\"`'":
                out.append(self.string())
            elif ch in _PUNCTUATION:
                self.i += 1
                out.append(Token(_PUNCTUATION[ch], ch, None, self.position(start)))
            else:
                op = next((op for op in _OPERATORS if text.startswith(op, start)), None)
                if op is None:
                    raise self.error(f"unexpected character {ch!r}", start)
                self.i += len(op)
                out.append(Token(Kind.OP, op, None, self.position(start)))

    def skip_space(self) -> None:
        text = self.text
        while self.i < len(text) and text[self.i] in " \t\r\n":
            if text[self.i] == "\n":
                self.line += 1
                self.line_start = self.i + 1
            self.i += 1

    def identifier(self) -> Token:
        start = self.i
        text = self.text
        while self.i < len(text) and (
            text[self.i].isalpha() or text[self.i].isdecimal() or text[self.i] == "_"
        ):
            self.i += 1
        word = text[start : self.i]
        return Token(Kind.IDENT, word, None, self.position(start))

    def number(self) -> Token:
        start = self.i
        pos = self.position(start)
        found = _NUMBER.match(self.text, start)
        assert found is not None  # the caller saw a digit, or a dot and a digit
        word = found.group()
        self.i = found.end()
        glued = self.text[self.i : self.i + 1]
        if glued.isalnum() or glued in ("_", "."):
            rest = _GLUED.match(self.text, self.i)
            assert rest is not None  # `[\w.]*` matches, if only the empty string
            whole = word + rest.group()
            if (word == "0" and glued in "xXbBoO") or glued == "_":
                raise LangError(f"only plain decimal numbers are supported, not {whole}", pos)
            raise LangError(f"malformed number {whole}", pos)
        if word.isdecimal():
            value = int(word)  # base 10 even with leading zeros, as Istio parses it
            if value > (1 << 63) - 1:
                raise LangError(f"integer {word} does not fit in INT64", pos)
            return Token(Kind.INT, word, value, pos)
        number = float(word)
        if number == float("inf"):
            raise LangError(f"number {word} does not fit in DOUBLE", pos)
        return Token(Kind.FLOAT, word, number, pos)

    def string(self) -> Token:
        start = self.i
        quote = self.text[start]
        if quote == "`":
            end = self.text.find("`", start + 1)
            if end < 0:
                raise self.error("raw string literal not terminated", start)
            raw = self.text[start + 1 : end]
            # Go drops carriage returns from raw strings.
            value = raw.replace("\r", "")
            pos = self.position(start)
            for offset, ch in enumerate(raw):  # raw strings may span lines
                if ch == "\n":
                    self.line += 1
                    self.line_start = start + 1 + offset + 1
            self.i = end + 1
            return Token(Kind.STRING, self.text[start : end + 1], value, pos)
        value = self.interpreted(quote)
        return Token(Kind.STRING, self.text[start : self.i], value, self.position(start))

    def interpreted(self, quote: str) -> str:
        """The value of a "..." string or a '.' rune literal (which CEXL types as STRING)."""
        text = self.text
        start = self.i
        self.i += 1
        out = bytearray()
        chars = 0
        while True:
            if self.i >= len(text) or text[self.i] == "\n":
                kind = "string" if quote == '"' else "rune"
                raise self.error(f"{kind} literal not terminated", start)
            ch = text[self.i]
            if ch == quote:
                self.i += 1
                break
            if ch == "\\":
                out += self.escape(quote)
            else:
                out += ch.encode("utf-8", "surrogatepass")
                self.i += 1
            chars += 1
        try:
            value = out.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("string literal is not valid UTF-8", start) from None
        if quote == "'" and chars != 1:
            raise self.error("a rune literal holds exactly one character", start)
        return value

    def escape(self, quote: str) -> bytes:
        text = self.text
        at = self.i
        kind = text[at + 1 : at + 2]
        if kind in _SIMPLE_ESCAPES:
            self.i += 2
            return _SIMPLE_ESCAPES[kind].encode()
        if kind == quote:
            self.i += 2
            return kind.encode()
        if kind in _NUMERIC_ESCAPES or (kind and kind in "01234567"):
            size, base = _NUMERIC_ESCAPES.get(kind, (3, 8))
            first = at + 1 if base == 8 else at + 2
            digits = text[first : first + size]
            valid = "01234567" if base == 8 else "0123456789abcdefABCDEF"
            if len(digits) != size or any(d not in valid for d in digits):
                raise self.error("malformed escape sequence", at)
            self.i = first + size
            code = int(digits, base)
            if base == 8 and code > 255:
                raise self.error("octal escape value > 255", at)
            if kind == "x" or base == 8:
                return bytes([code])  # a byte, which may be half of a UTF-8 sequence
            if code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise self.error("escape sequence is an invalid Unicode code point", at)
            return chr(code).encode()
        raise self.error("unknown escape sequence", at)


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an EOF token; raises LangError."""
    return _Lexer(text).tokens()
