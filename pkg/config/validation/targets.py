"""What a security policy applies to: a workload selector, or targetRef(s) to a Service,
ServiceEntry or Gateway (Istio's validateOneOfSelectorType, validatePolicyTargetReference)."""

from __future__ import annotations

from pkg.config.validation.common import check_labels, check_selector_labels
from pkg.config.validation.result import FieldPath, ValidationResult

# (group, kind) a policy may target; the core group is written "" and means "core".
ALLOWED_TARGETS = (
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
)


def check_policy_targets(spec, path: FieldPath, out: ValidationResult) -> None:
    """`selector`, `targetRef`, `targetRefs`: at most one, each well formed."""
    has_ref = "targetRef" in spec.DESCRIPTOR.fields_by_name and spec.HasField("targetRef")
    refs = list(spec.targetRefs) if "targetRefs" in spec.DESCRIPTOR.fields_by_name else []
    if sum((spec.HasField("selector"), has_ref, bool(refs))) > 1:
        out.error(path, "only one of targetRefs or workloadSelector can be set")
    if spec.HasField("selector"):
        labels = spec.selector.match_labels
        check_labels(labels, path / "selector" / "matchLabels", out)
        check_selector_labels(labels, path / "selector" / "matchLabels", out)
    if has_ref:
        _check_target(spec.targetRef, path / "targetRef", out)
    for index, ref in enumerate(refs):
        _check_target(ref, path / "targetRefs" / index, out)


def _check_target(ref, path: FieldPath, out: ValidationResult) -> None:
    if not ref.name:
        out.error(path / "name", "targetRef name must be set")
    if ref.namespace:
        out.error(
            path / "namespace",
            "targetRef namespace must not be set; cross namespace referencing is not supported",
        )
    group = ref.group or "core"
    if (group, ref.kind) not in ALLOWED_TARGETS:
        allowed = ", ".join(f"{g}/{k}" for g, k in ALLOWED_TARGETS)
        out.error(path, f"targetRef must be to one of [{allowed}] but was {ref.group}/{ref.kind}")
