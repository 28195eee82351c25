"""The structural comparison: what a Go round trip spells differently is no difference, and
every real difference is named by its path."""

from __future__ import annotations

from tools.conformance.compare import diff_streams

GOT = """kind: Pod
metadata:
  annotations:
    sidecar.istio.io/status: '{"containers":["istio-proxy"],"volumes":null}'
spec:
  containers:
  - name: istio-proxy
    resources: {limits: {cpu: 2000m, memory: 1024Mi}}
    readinessProbe: {periodSeconds: 0, httpGet: {port: 15021}}
    env: [{name: PROXY_CONFIG, value: '{"a":1,"b":2}'}]
status: {}
"""
# The same pod as Go writes it: other units, keys in another order, zero fields left out.
SAME = """kind: Pod
metadata:
  annotations:
    sidecar.istio.io/status: '{"volumes":null, "containers": ["istio-proxy"]}'
spec:
  containers:
  - name: istio-proxy
    resources: {limits: {cpu: "2", memory: 1Gi}}
    readinessProbe: {httpGet: {port: 15021}}
    env: [{name: PROXY_CONFIG, value: '{"b":2,"a":1}'}]
"""


def test_what_go_spells_differently_is_no_difference() -> None:
    assert diff_streams(GOT, SAME) == []


def test_differences_are_named_by_path() -> None:
    other = SAME.replace("memory: 1Gi", "memory: 2Gi").replace('"b":2', '"b":3')
    assert diff_streams(GOT, other) == [
        "document 1: spec.containers[0].env[0].value.b: 2, want 3",
        "document 1: spec.containers[0].resources.limits.memory: Decimal('1073741824'), want Decimal('2147483648')",
    ]


def test_lists_of_other_lengths_and_streams_of_other_sizes() -> None:
    assert diff_streams(GOT, SAME + "---\nkind: Service\n") == ["1 documents, want 2"]
    two = SAME.replace("  - name: istio-proxy", "  - name: app\n  - name: istio-proxy")
    assert diff_streams(GOT, two) == [
        "document 1: spec.containers: 1 items ['istio-proxy'], want 2 ['app', 'istio-proxy']"
    ]
