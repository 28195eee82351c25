"""The injection conformance tool on a small tree shaped like an istio/istio checkout: a
one-container template, a chart values.yaml, an input and goldens written here."""

from __future__ import annotations

import io
import json
import pathlib

import pytest

from tools.conformance import inject as conformance

# The chart keeps its defaults under one key; the ConfigMap's values pick some of them.
CHART_VALUES = """_internal_defaults_do_not_set:
  replicaCount: 3
  cni: {enabled: false}
  env: {}
  revision: ""
  gateways: {securityContext: {}, seccompProfile: {}, podAnnotations: {a: b}}
  sidecarInjectorWebhook: {rewriteAppHTTPProbe: false}
  global:
    hub: registry.example.test
    tag: "9.9"
    imagePullPolicy: ""
"""
TEMPLATE = """spec:
  containers:
  - name: istio-proxy
    image: {{ printf "%s/proxyv2:%s" .Values.global.hub .Values.global.tag | quote }}
    {{- with .Values.global.imagePullPolicy }}
    imagePullPolicy: {{ . }}
    {{- end }}
"""
HELLO = """apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers:
      - {name: hello, image: hello:1}
"""
# Written out by hand: what the injector must add to HELLO with that template.
HELLO_STATUS = {"initContainers": None, "containers": ["istio-proxy"], "volumes": None,
                "imagePullSecrets": None, "revision": "default"}  # fmt: skip


def injected(pull_policy: str = "") -> str:
    proxy = '{name: istio-proxy, image: "registry.example.test/proxyv2:9.9"'
    proxy += f", imagePullPolicy: {pull_policy}}}" if pull_policy else "}"
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello}}
spec:
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata:
      labels: {{app: hello}}
      annotations:
        prometheus.io/path: /stats/prometheus
        prometheus.io/port: "15020"
        prometheus.io/scrape: "true"
        sidecar.istio.io/status: '{json.dumps(HELLO_STATUS)}'
    spec:
      containers:
      - {{name: hello, image: hello:1}}
      - {proxy}
"""


BAD_PORTS = """apiVersion: apps/v1
kind: Deployment
metadata: {name: traffic}
spec:
  template:
    metadata:
      annotations: {traffic.sidecar.istio.io/includeInboundPorts: "80,x"}
    spec:
      containers: [{name: app, image: app:1}]
"""


@pytest.fixture
def checkout(tmp_path: pathlib.Path) -> pathlib.Path:
    chart = tmp_path / conformance.CHART
    (chart / "files").mkdir(parents=True)
    (chart / "values.yaml").write_text(CHART_VALUES)
    (tmp_path / conformance.TEMPLATE).write_text(TEMPLATE)
    cases = tmp_path / conformance.CASES_DIR
    cases.mkdir(parents=True)
    (cases / "hello.yaml").write_text(HELLO)
    (cases / "hello.yaml.injected").write_text(injected())
    # The table runs hello-always with global.imagePullPolicy=Always: this golden is wrong.
    (cases / "hello-always.yaml.injected").write_text(injected("Never"))
    (cases / "hello-never.yaml.injected").write_text(injected("Never"))
    (cases / "traffic-annotations-bad-includeinboundports.yaml").write_text(BAD_PORTS)
    # Not in the table: found, and run with the defaults.
    (cases / "extra.yaml").write_text(HELLO)
    (cases / "extra.yaml.injected").write_text(injected())
    (cases / "install.iop.yaml").write_text("spec: {}\n")
    return tmp_path


def test_values_are_picked_from_the_chart_as_the_configmap_picks_them(
    checkout: pathlib.Path,
) -> None:
    values = conformance.chart_values(checkout)
    assert values == {
        "global": {"hub": "registry.example.test", "tag": "9.9", "imagePullPolicy": ""},
        "sidecarInjectorWebhook": {"rewriteAppHTTPProbe": False},
        "revision": "",
        "pilot": {"cni": {"enabled": False}, "env": {}},
        "gateways": {"securityContext": {}, "seccompProfile": {}},
    }


def test_set_flags_go_into_the_values_by_path() -> None:
    base = {"global": {"proxy": {"image": "proxyv2"}}}
    out = conformance.with_values(base, {"global.proxy.image": "x", "pilot.cni.enabled": True})
    assert out == {"global": {"proxy": {"image": "x"}}, "pilot": {"cni": {"enabled": True}}}
    assert base == {"global": {"proxy": {"image": "proxyv2"}}}  # the defaults stay as they were


def test_each_case_passes_or_fails_against_its_golden(checkout: pathlib.Path) -> None:
    only = [
        "hello.yaml.injected",
        "hello-always",
        "hello-never",
        "bad-includeinboundports",
        "extra",
    ]
    results = {r.case.want: r for r in conformance.run(checkout, only=only)}
    assert set(results) == {"hello.yaml.injected", "hello-always.yaml.injected",
                            "hello-never.yaml.injected", "includeinboundports", "extra.yaml.injected"}  # fmt: skip
    assert results["hello.yaml.injected"].passed, results["hello.yaml.injected"].problems
    assert results["hello-never.yaml.injected"].passed
    assert results["hello-always.yaml.injected"].problems == (
        "document 1: spec.template.spec.containers[1].imagePullPolicy: 'Always', want 'Never'",
    )
    assert results["includeinboundports"].passed
    extra = results["extra.yaml.injected"]
    assert extra.passed
    assert not extra.case.listed


def test_a_refusal_case_fails_when_the_input_is_injected(checkout: pathlib.Path) -> None:
    cases = checkout / conformance.CASES_DIR
    (cases / "traffic-annotations-bad-includeinboundports.yaml").write_text(HELLO)
    [result] = conformance.run(checkout, only=["bad-includeinboundports"])
    assert result.problems == ("injected; want an error naming includeinboundports",)


def test_the_command_prints_a_line_per_case_and_the_totals(
    checkout: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = conformance.main(["--istio", str(checkout), "-k", "hello.yaml.injected", "-k", "extra"])
    assert capsys.readouterr().out.splitlines() == [
        "PASS hello.yaml.injected",
        "PASS extra.yaml.injected (not in the table: default settings)",
        "1/1 listed cases pass",
        "1/1 cases not in the table pass with the default settings",
    ]
    assert code == 0
    assert conformance.main(["--istio", str(checkout), "-k", "hello-always"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL hello-always.yaml.injected: document 1: ")
    assert out.endswith("0/1 listed cases pass\n")


def test_missing_files_are_failures_not_crashes(checkout: pathlib.Path) -> None:
    results = conformance.run(checkout, only=["hello.yaml.proxyImageName", "statefulset"])
    assert [r.problems for r in results] == [
        ("missing input statefulset.yaml",),
        ("missing input statefulset.yaml",),
        ("missing golden hello.yaml.proxyImageName.injected",),
    ]


def test_not_a_checkout_is_one_clear_error(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert conformance.main(["--istio", str(tmp_path)]) == 2
    assert "is " + str(tmp_path) + " a checkout of istio/istio?" in capsys.readouterr().err


def test_report_shows_every_difference_when_verbose() -> None:
    case = conformance.Case("a.yaml", "a.yaml.injected")
    out = io.StringIO()
    conformance.report([conformance.Result(case, ("one", "two"))], verbose=True, out=out)
    assert out.getvalue().splitlines() == [
        "FAIL a.yaml.injected: one",
        "     two",
        "0/1 listed cases pass",
    ]
