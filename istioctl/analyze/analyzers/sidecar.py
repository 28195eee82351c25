"""Sidecar analyzers, after Istio's pkg/config/analysis/analyzers/sidecar."""

from __future__ import annotations

from istioctl.analyze.analyzers.base import Analyzer, Context
from istioctl.analyze.model import Entry, selector_string, selects


def check_default_selectors(ctx: Context) -> None:
    """More than one Sidecar without a workload selector in a namespace: which applies is
    undefined."""
    by_namespace: dict[str, list[Entry]] = {}
    for entry in ctx.snapshot.of("Sidecar"):
        if not entry.spec.workload_selector.labels:
            by_namespace.setdefault(entry.namespace, []).append(entry)
    for namespace, entries in sorted(by_namespace.items()):
        if len(entries) < 2:
            continue
        names = sorted(e.name for e in entries)
        for entry in entries:
            ctx.report(
                entry, "MultipleSidecarsWithoutWorkloadSelectors", names, namespace,
                path="metadata.name",
            )  # fmt: skip


def check_selectors(ctx: Context) -> None:
    """A Sidecar's selector must match a workload of its namespace, and no workload may be
    selected by two Sidecars."""
    selected: dict[tuple[str, str], list[Entry]] = {}
    for entry in ctx.snapshot.of("Sidecar"):
        selector = dict(entry.spec.workload_selector.labels)
        if not selector:
            continue
        matched = [
            w
            for w in ctx.snapshot.workloads
            if w.namespace == entry.namespace and selects(selector, w.labels)
        ]
        if not matched and ctx.workloads_known:
            ctx.report(
                entry,
                "ReferencedResourceNotFound",
                "selector",
                selector_string(selector),
                path="spec.workloadSelector",
            )
        for workload in matched:
            selected.setdefault((workload.namespace, workload.name), []).append(entry)
    for (namespace, pod), entries in sorted(selected.items()):
        if len(entries) < 2:
            continue
        names = sorted(e.name for e in entries)
        for entry in entries:
            ctx.report(
                entry, "ConflictingSidecarWorkloadSelectors", names, namespace, pod,
                path="spec.workloadSelector",
            )  # fmt: skip


ANALYZERS = (
    Analyzer(
        "sidecar.DefaultSelectorAnalyzer",
        "Validates that there aren't multiple sidecar resources that have no selector",
        check_default_selectors,
    ),
    Analyzer(
        "sidecar.SelectorAnalyzer",
        "Validates that sidecars that define a workload selector match at least one pod, "
        "and that there aren't multiple sidecar resources that select overlapping pods",
        check_selectors,
    ),
)
