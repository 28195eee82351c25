"""Validation results: problems with the field path they are about."""

from __future__ import annotations

import dataclasses
import enum


class FieldPath(str):
    """A dotted field path such as `spec.http[0].route[1].weight`, built with `/`."""

    __slots__ = ()

    def __truediv__(self, part: str | int) -> FieldPath:
        if isinstance(part, int):
            return FieldPath(f"{self}[{part}]")
        if not self:
            return FieldPath(part)
        return FieldPath(f"{self}.{part}")


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{prefix}{where}{self.message}"


@dataclasses.dataclass
class ValidationResult:
    """Problems found in one resource. Validators add to it and never raise."""

    problems: list[Problem] = dataclasses.field(default_factory=list)
    # Paths the document wrote as `{}` or `[]`: the parsed proto cannot tell those from an
    # absent field, and Istio refuses a few of them (an empty portLevelMtls).
    empty_fields: set[str] = dataclasses.field(default_factory=set)

    def written_empty(self, path: str) -> bool:
        return path in self.empty_fields

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, Severity.WARNING))

    def extend(self, other: ValidationResult) -> None:
        self.problems.extend(other.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors
