"""Test support: a spec through the loader, as a user's file would go, and what came back.

Validators are always exercised through `loader.load_text`, so a test sees exactly what
istioctl and the config store report: the problems with their field paths.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pkg.config import loader, yamlstream
from pkg.config.kinds import ALL

_GROUPS = {schema.kind: schema.api_version for schema in ALL}  # kinds are unique across our groups


@dataclasses.dataclass(frozen=True)
class Outcome:
    errors: list[str]  # "spec.x.y: message", one per problem
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors

    def has_error(self, text: str) -> bool:
        return any(text in e for e in self.errors)

    def has_warning(self, text: str) -> bool:
        return any(text in w for w in self.warnings)


def validate(kind: str, spec: Any, *, name: str = "x", namespace: str = "default") -> Outcome:
    """Loads one document of `kind` with `spec`; never raises for a refusal."""
    document = {
        "apiVersion": _GROUPS[kind],
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    found: list[loader.DocumentError] = []
    try:
        loader.load_text(yamlstream.dump(document), source="test.yaml", warnings=found)
    except loader.LoadError as error:
        return Outcome([str(p) for e in error.errors for p in e.problems], [])
    return Outcome([], [f"{p.path}: {p.message}" for e in found for p in e.problems])


def check(outcome: Outcome, error: str | None) -> None:
    """`error` None: accepted (warnings allowed); else refused with a problem containing it."""
    if error is None:
        assert outcome.ok, outcome.errors
    else:
        assert outcome.has_error(error), (error, outcome.errors)
