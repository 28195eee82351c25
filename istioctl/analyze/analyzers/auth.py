"""auth.AuthorizationPoliciesAnalyzer: policies whose selector matches no workload."""

from __future__ import annotations

from istioctl.analyze.analyzers.base import Analyzer, Context
from istioctl.analyze.model import selector_string, selects


def check(ctx: Context) -> None:
    if not ctx.workloads_known:
        return
    root = ctx.snapshot.istio_namespace  # a policy there applies mesh-wide
    for entry in ctx.snapshot.of("AuthorizationPolicy"):
        selector = dict(entry.spec.selector.match_labels)
        if not selector:
            continue
        matched = any(
            (entry.namespace in (root, w.namespace)) and selects(selector, w.labels)
            for w in ctx.snapshot.workloads
        )
        if not matched:
            ctx.report(
                entry, "NoMatchingWorkloadsFound", selector_string(selector), path="spec.selector"
            )


ANALYZERS = (
    Analyzer(
        "auth.AuthorizationPoliciesAnalyzer",
        "Checks the validity of authorization policies",
        check,
    ),
)
