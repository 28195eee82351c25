"""schema.ValidationAnalyzer.<Kind>: the shared loader's validation, as IST0106 messages.

The problems were found when the resource was read (source.py); this reports each one on
the line of the field it names.
"""

from __future__ import annotations

from collections.abc import Callable

from istioctl.analyze.analyzers.base import Analyzer, Context
from pkg.config.kinds import ISTIO


def _for(kind: str) -> Callable[[Context], None]:
    def check(ctx: Context) -> None:
        for entry in ctx.snapshot.entries:
            if entry.kind != kind:
                continue
            for problem in entry.problems:
                path, sep, _ = problem.partition(": ")
                ctx.report(entry, "SchemaValidationError", problem, path=path if sep else "")

    return check


ANALYZERS = tuple(
    Analyzer(
        f"schema.ValidationAnalyzer.{kind}",
        f"Runs schema validation as an analyzer on '{kind}' resources",
        _for(kind),
    )
    for kind in sorted({s.kind for s in ISTIO})
)
