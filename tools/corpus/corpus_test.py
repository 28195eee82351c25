"""The corpus reader on a small tree shaped like Istio's checkouts."""

from __future__ import annotations

import pathlib

from tools.corpus import measure
from tools.corpus.corpus import Expect, Skipped, documents

VS = """apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
"""
PROTO = """// An example:
//
// ```yaml
// apiVersion: networking.istio.io/v1alpha3
// kind: DestinationRule
// metadata:
//   name: ratings
// spec:
//   host: ratings
// ```
message DestinationRule {}
"""
INVALID = """_err: DENY action without rules
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny}
spec: {action: DENY}
---
apiVersion: v1
kind: Service
metadata: {name: not-istio}
"""


def _tree(root: pathlib.Path) -> pathlib.Path:
    (root / "samples").mkdir(parents=True)
    (root / "samples" / "vs.yaml").write_text(VS)
    (root / "samples" / "chart.yaml").write_text("a: {{ .Values.x }}\n")
    (root / "api.proto").write_text(PROTO)
    (root / "authz-invalid.yaml").write_text(INVALID)
    return root


def test_documents_and_their_expected_verdicts(tmp_path):
    skipped = Skipped()
    found = list(documents(_tree(tmp_path), skipped))
    assert [(d.source, d.kind, d.expect) for d in found] == [
        ("api.proto#1", "DestinationRule", Expect.VALID),
        ("authz-invalid.yaml", "AuthorizationPolicy", Expect.INVALID),
        ("samples/vs.yaml", "VirtualService", Expect.VALID),
    ]
    assert "_err" not in found[1].data
    assert skipped.counts == {"not an Istio kind": 1, "template (not YAML until rendered)": 1}


def test_measure_counts_agreement(tmp_path, capsys):
    report = measure.measure([_tree(tmp_path)], map_versions=False, verbose=True)
    assert report["tally"] == {"valid:accepted": 2, "invalid:refused": 1}
    assert report["crashes"] == []
    assert report["disagreements"] == []
    out = capsys.readouterr().out
    assert "valid in Istio: 2 judged, 2 accepted (100.0%), 0 crashes" in out
    assert "invalid in Istio: 1 judged, 1 refused (100.0%), 0 crashes" in out
