"""annotations.K8sAnalyzer: Istio annotations on Kubernetes resources, known and in place."""

from __future__ import annotations

import functools
import pathlib

import yaml

from istioctl.analyze.analyzers.base import Analyzer, Context

_CATALOG = pathlib.Path(__file__).parents[1] / "annotations.yaml"
KINDS = ("Namespace", "Service", "Pod", "Deployment")


@functools.cache
def catalog() -> dict[str, tuple[str, ...]]:
    """Each Istio annotation and the kinds it may be put on."""
    data = yaml.safe_load(_CATALOG.read_text())
    return {name: tuple(kinds) for name, kinds in data["annotations"].items()}


def is_istio(annotation: str) -> bool:
    """In an Istio domain: `sidecar.istio.io/inject`, `istio.io/rev`, ..."""
    domain, slash, _ = annotation.partition("/")
    return bool(slash) and domain.endswith("istio.io")


def check(ctx: Context) -> None:
    known = catalog()
    for kind in KINDS:
        for entry in ctx.snapshot.of(kind):
            for annotation in sorted(entry.annotations):
                if not is_istio(annotation):
                    continue
                path = f"metadata.annotations.{annotation}"
                kinds = known.get(annotation)
                if kinds is None:
                    ctx.report(entry, "UnknownAnnotation", annotation, path=path)
                elif "Any" not in kinds and kind not in kinds:
                    ctx.report(
                        entry, "MisplacedAnnotation", annotation, ", ".join(kinds), path=path
                    )


ANALYZERS = (
    Analyzer(
        "annotations.K8sAnalyzer",
        "Checks for misplaced and invalid Istio annotations in Kubernetes resources",
        check,
    ),
)
