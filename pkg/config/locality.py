"""Where a workload runs, from Kubernetes labels, as Istio reads it (pkg/model/proxy.go,
pilot's kube controller): the pod's own label first, else its node's topology labels.

Localities are `region/zone/subzone` strings. Kubernetes label values cannot hold `/`, so
the pod labels spell them with dots (`region1.zone1.sub1`).
"""

from __future__ import annotations

from collections.abc import Mapping

LOCALITY_LABEL = "topology.istio.io/locality"
LEGACY_LOCALITY_LABEL = "istio-locality"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
SUBZONE_LABEL = "topology.istio.io/subzone"
# Before Kubernetes 1.17 nodes carried these; Istio still reads them when the GA ones are absent.
LEGACY_REGION_LABEL = "failure-domain.beta.kubernetes.io/region"
LEGACY_ZONE_LABEL = "failure-domain.beta.kubernetes.io/zone"


def from_pod_labels(labels: Mapping[str, str]) -> str:
    """The locality a pod's labels set (`topology.istio.io/locality`, else the older
    `istio-locality`), dots read as slashes; "" when neither is there."""
    value = labels.get(LOCALITY_LABEL)
    if value is None:
        value = labels.get(LEGACY_LOCALITY_LABEL, "")
    if not value or "/" in value:
        return value
    return value.replace(".", "/")


def from_node_labels(labels: Mapping[str, str]) -> str:
    """`region/zone/subzone` from a node's topology labels; "" when it has none."""
    region = labels.get(REGION_LABEL) or labels.get(LEGACY_REGION_LABEL, "")
    zone = labels.get(ZONE_LABEL) or labels.get(LEGACY_ZONE_LABEL, "")
    subzone = labels.get(SUBZONE_LABEL, "")
    if not (region or zone or subzone):
        return ""
    return f"{region}/{zone}/{subzone}"


def of_pod(pod_labels: Mapping[str, str], node_labels: Mapping[str, str] | None = None) -> str:
    """The pod's label wins over its node's (Istio's getPodLocality)."""
    return from_pod_labels(pod_labels) or from_node_labels(node_labels or {})
