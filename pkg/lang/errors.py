"""The two ways an expression fails: when it is compiled, and when it is evaluated."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    """Where a token starts in the expression's text: 1-based line and column (characters)."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class LangError(ValueError):
    """The expression does not parse or does not type-check; found at config time.

    str() is `message at line:column` (`unknown attribute "source.lables" at 1:1`), or only
    the message when no single place is to blame.
    """

    def __init__(self, message: str, position: Position | None = None) -> None:
        self.message = message
        self.position = position
        super().__init__(f"{message} at {position}" if position else message)


class EvalError(Exception):
    """Evaluating a well-typed expression against a bag failed: an absent attribute outside
    a `|`, a missing map key, or a function refusing its input (`ip("x")`).

    Mixer treats a rule whose match raises this as not matching.
    """
