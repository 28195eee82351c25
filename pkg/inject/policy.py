"""Whether a pod gets a sidecar: Istio's injectRequired, and the namespace rule its
MutatingWebhookConfiguration's selectors express.

A pod's `sidecar.istio.io/inject` label (or, older, annotation) says true or false; without
one the neverInjectSelector, then the alwaysInjectSelector decide, then the config's policy.
Host-network pods and Kubernetes' own namespaces are never injected. The webhook selectors
add the namespace: one labelled `istio-injection=enabled` injects every pod not labelled
false; one without the label injects only pods labelled true; `istio-injection=disabled`
injects none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pkg.inject.config import InjectionConfig

log = logging.getLogger("inject")

INJECT_LABEL = "sidecar.istio.io/inject"
NAMESPACE_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
IGNORED_NAMESPACES = frozenset(
    {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}
)


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector against labels; an empty selector matches nothing here (as Istio
    skips empty ones)."""
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"{operator!r} is not a valid label selector operator")
    return True


def inject_required(config: InjectionConfig, pod: Mapping[str, Any]) -> bool:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        return False
    if metadata.get("namespace") in IGNORED_NAMESPACES:
        return False
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    selector = labels.get(INJECT_LABEL, annotations.get(INJECT_LABEL, ""))
    use_default, inject = False, False
    if selector == "true":
        inject = True
    elif selector == "false":
        inject = False
    else:
        if selector:
            log.warning(
                "invalid value for %s: %r; using the default policy", INJECT_LABEL, selector
            )
        use_default = True
    if use_default:
        for never in config.never_inject_selector:
            if selector_matches(never, labels):
                inject, use_default = False, False
                break
    if use_default:
        for always in config.always_inject_selector:
            if selector_matches(always, labels):
                inject, use_default = True, False
                break
    if config.policy == "enabled":
        return True if use_default else inject
    return False if use_default else inject


def namespace_selects(namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
    """Whether Istio's sidecar-injector webhook selectors send this pod to the webhook."""
    pod_says = pod_labels.get(INJECT_LABEL)
    if NAMESPACE_LABEL in namespace_labels:
        return namespace_labels[NAMESPACE_LABEL] == "enabled" and pod_says != "false"
    if REVISION_LABEL in namespace_labels:
        return False  # a revision's own webhook serves it; this mesh has the default one only
    return pod_says == "true"


def webhook_selectors() -> dict[str, dict[str, dict[str, list[dict[str, object]]]]]:
    """The MutatingWebhookConfiguration's selectors that state `namespace_selects`."""
    return {
        "namespace": {
            "namespace": {
                "matchExpressions": [
                    {"key": NAMESPACE_LABEL, "operator": "In", "values": ["enabled"]}
                ]
            },
            "object": {
                "matchExpressions": [
                    {"key": INJECT_LABEL, "operator": "NotIn", "values": ["false"]}
                ]
            },
        },
        "object": {
            "namespace": {
                "matchExpressions": [
                    {"key": NAMESPACE_LABEL, "operator": "DoesNotExist"},
                    {"key": REVISION_LABEL, "operator": "DoesNotExist"},
                ]
            },
            "object": {
                "matchExpressions": [{"key": INJECT_LABEL, "operator": "In", "values": ["true"]}]
            },
        },
    }
