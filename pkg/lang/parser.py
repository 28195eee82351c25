"""CEXL text to an expression tree: a Pratt parser over Go's expression grammar.

Istio parses CEXL with Go's own parser and keeps a subset, so this parser follows Go:
binary precedence `||` < `&&` < comparisons < `+ |` (left-associative), unary `!` and `-`
above them, then `[]` indexing and `.method(...)` calls. A dotted run of identifiers is one
attribute name (`context.reporter.kind`); followed by `(` its last part is a method of the
rest (`request.path.startsWith("/api")`), and a lone identifier followed by `(` is a function.
"""

from __future__ import annotations

from pkg.lang.ast import PRECEDENCE, Attribute, Binary, Call, Index, Literal, Node, Unary
from pkg.lang.errors import LangError
from pkg.lang.lexer import Kind, Token, tokenize
from pkg.lang.types import ValueType

MAX_DEPTH = 100  # far above any real expression; keeps the checker and compiler off the stack limit

# Go operators CEXL leaves out: named in the error rather than reported as a syntax error.
_UNSUPPORTED_BINARY = frozenset({"-", "*", "/", "%", "&", "^", "<<", ">>", "&^"})
_UNSUPPORTED_UNARY = frozenset({"+", "^", "*", "&", "<-"})


def parse(text: str) -> Node:
    """The tree of one expression; raises LangError with the position of the problem."""
    if not text.strip():
        raise LangError("empty expression")
    parser = _Parser(tokenize(text))
    node = parser.expression(0)
    parser.expect(Kind.EOF, "an operator or the end of the expression")
    return node


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.at]
        if token.kind is not Kind.EOF:
            self.at += 1
        return token

    def expect(self, kind: Kind, wanted: str) -> Token:
        token = self.peek()
        if token.kind is not kind:
            raise LangError(f"expected {wanted}, found {token.describe()}", token.pos)
        return self.advance()

    def nest(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LangError(f"expression nested more than {MAX_DEPTH} deep", token.pos)

    def expression(self, min_precedence: int) -> Node:
        start = self.peek()
        self.nest(start)
        left = self.unary()
        chained = 0
        while True:
            token = self.peek()
            if token.kind is not Kind.OP:
                break
            precedence = PRECEDENCE.get(token.text)
            if precedence is None:
                if token.text in _UNSUPPORTED_BINARY:
                    raise LangError(f"operator {token.text} is not supported", token.pos)
                break
            if precedence <= min_precedence:
                break
            self.advance()
            # A left-associative chain nests to the left: it counts toward the depth too.
            chained += 1
            self.nest(token)
            right = self.expression(precedence)
            left = Binary(token.text, left, right, token.pos)
        self.depth -= 1 + chained
        return left

    def unary(self) -> Node:
        token = self.peek()
        if token.kind is Kind.OP:
            if token.text in ("!", "-"):
                self.advance()
                self.nest(token)
                operand = self.unary()
                self.depth -= 1
                return Unary(token.text, operand, token.pos)
            if token.text in _UNSUPPORTED_UNARY:
                raise LangError(f"unary operator {token.text} is not supported", token.pos)
        return self.postfix(self.primary())

    def primary(self) -> Node:
        token = self.advance()
        match token.kind:
            case Kind.IDENT:
                return self.name(token)
            case Kind.INT:
                return Literal(token.value, ValueType.INT64, token.pos)  # type: ignore[arg-type]
            case Kind.FLOAT:
                return Literal(token.value, ValueType.DOUBLE, token.pos)  # type: ignore[arg-type]
            case Kind.STRING:
                return Literal(token.value, ValueType.STRING, token.pos)  # type: ignore[arg-type]
            case Kind.LPAREN:
                inner = self.expression(0)
                self.expect(Kind.RPAREN, "')'")
                return inner
        raise LangError(f"expected an operand, found {token.describe()}", token.pos)

    def name(self, first: Token) -> Node:
        """An attribute, a bool, a function call or a method call on an attribute."""
        parts = [first]
        while self.peek().kind is Kind.DOT and self.peek(1).kind is Kind.IDENT:
            self.advance()
            parts.append(self.advance())
        if self.peek().kind is Kind.LPAREN:
            args = self.arguments()
            if len(parts) == 1:
                return Call(first.text, args, None, first.pos)
            target = Attribute(".".join(p.text for p in parts[:-1]), first.pos)
            return Call(parts[-1].text, args, target, parts[-1].pos)
        if len(parts) == 1 and first.text.lower() in ("true", "false"):
            # Go's parser sees true/false as identifiers; Istio makes them BOOL in any case.
            return Literal(first.text.lower() == "true", ValueType.BOOL, first.pos)
        return Attribute(".".join(p.text for p in parts), first.pos)

    def arguments(self) -> tuple[Node, ...]:
        self.expect(Kind.LPAREN, "'('")
        args: list[Node] = []
        while self.peek().kind is not Kind.RPAREN:
            args.append(self.expression(0))
            if self.peek().kind is not Kind.COMMA:
                break
            self.advance()  # Go allows a trailing comma
        self.expect(Kind.RPAREN, "',' or ')'")
        return tuple(args)

    def postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token.kind is Kind.LBRACK:
                self.advance()
                key = self.expression(0)
                self.expect(Kind.RBRACK, "']'")
                node = Index(node, key, token.pos)
            elif token.kind is Kind.DOT:
                self.advance()
                method = self.expect(Kind.IDENT, "a method name after '.'")
                if self.peek().kind is not Kind.LPAREN:
                    raise LangError(
                        f"field .{method.text} of a value: only attribute names are dotted "
                        "and only methods follow an expression",
                        method.pos,
                    )
                node = Call(method.text, self.arguments(), node, method.pos)
            elif token.kind is Kind.LPAREN:
                raise LangError("only a function or method name can be called", token.pos)
            else:
                return node
