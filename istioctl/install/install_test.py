"""`istioctl install` and `verify-install` through the official Kubernetes client, against a
double of the API server that validates what it is sent (istioctl/install/testing.py)."""

from __future__ import annotations

import base64
import io
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
import yaml

from istioctl import main as istioctl
from istioctl.install.testing import ApiServerDouble
from manifests import generate


@pytest.fixture
def api(tmp_path: pathlib.Path) -> Iterator[ApiServerDouble]:
    with ApiServerDouble() as server:
        (tmp_path / "kubeconfig").write_text(server.kubeconfig())
        yield server


def run(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    code = istioctl.main([*argv, "--kubeconfig", str(tmp_path / "kubeconfig")])
    out, err = capsys.readouterr()
    return code, out, err


def test_install_applies_the_manifest_and_the_ca_it_needs(
    api: ApiServerDouble, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(tmp_path, capsys, "install", "-y")
    assert code == 0, err
    manifest = generate.generate()
    for obj in manifest:
        assert (
            api.find(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace", ""))
            is not None
        ), obj["metadata"]
    patches = [r for r in api.requests if r.method == "PATCH"]
    assert patches
    assert all(
        r.content_type == "application/apply-patch+yaml" and r.field_manager == "istioctl"
        for r in patches
    )
    assert out.splitlines()[-1].startswith("✔ Installation complete")
    root = base64.b64decode(
        api.existing("Secret", "cacerts", "istio-system")["data"]["root-cert.pem"]
    ).decode()
    assert "BEGIN CERTIFICATE" in root
    webhook = api.existing("MutatingWebhookConfiguration", "istio-sidecar-injector")
    assert {
        base64.b64decode(w["clientConfig"]["caBundle"]).decode() for w in webhook["webhooks"]
    } == {root}
    assert (
        api.existing("ConfigMap", "istio-ca-root-cert", "default")["data"]["root-cert.pem"] == root
    )
    token = api.existing("Secret", "istiod-ca-token", "istio-system")["data"]["token"]

    # Again: the same root and tokens (what the CA and its callers already hold) stay.
    code, _, err = run(tmp_path, capsys, "install", "-y", "--set", "values.pilot.replicaCount=2")
    assert code == 0, err
    assert (
        base64.b64decode(
            api.existing("Secret", "cacerts", "istio-system")["data"]["root-cert.pem"]
        ).decode()
        == root
    )
    assert api.existing("Secret", "istiod-ca-token", "istio-system")["data"]["token"] == token
    assert api.existing("Deployment", "istiod", "istio-system")["spec"]["replicas"] == 2


def test_dry_run_and_a_declined_prompt_change_nothing(
    api: ApiServerDouble,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = run(tmp_path, capsys, "install", "--dry-run")
    assert code == 0
    assert "Deployment istio-system/istiod would be applied (dry run)" in out
    assert api.requests == []
    assert api.objects == {}
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, err = run(tmp_path, capsys, "install")
    assert code == 1
    assert "Proceed? (y/N)" in out
    assert "Cancelled." in err
    assert api.objects == {}


def test_verify_install_waits_for_ready_workloads(
    api: ApiServerDouble, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(tmp_path, capsys, "verify-install")
    assert code == 1
    assert "✘ Deployment: istiod.istio-system: not found" in out
    assert run(tmp_path, capsys, "install", "-y")[0] == 0
    code, out, err = run(tmp_path, capsys, "verify-install")
    assert code == 1
    assert "✘ Deployment: istiod.istio-system: 0 of 1 replicas ready" in out
    assert "✘ DaemonSet: istio-nodeagent.istio-system: 0 of 0 pods ready" in out
    api.mark_ready()
    code, out, err = run(tmp_path, capsys, "verify-install")
    assert code == 0, out + err
    assert (
        "✔ CustomResourceDefinition: virtualservices.networking.istio.io checked successfully"
        in out
    )
    assert out.splitlines()[-1] == "✔ Istio is installed and verified successfully"


def test_an_object_the_cluster_refuses_is_reported(
    api: ApiServerDouble, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(tmp_path, capsys, "install", "-y", "--set", "values.pilot.replicaCount=many")
    assert code == 1
    assert "Deployment istio-system/istiod" in err
    assert "is invalid" in err


def test_kubectl_applies_the_generated_manifest(
    api: ApiServerDouble, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `istioctl manifest generate | kubectl apply -f -`, as a user would on a cluster: a
    # client-side dry run, then server-side apply (which the double validates, object by object).
    assert istioctl.main(["manifest", "generate"]) == 0
    manifest = tmp_path / "istio.yaml"
    manifest.write_text(capsys.readouterr().out)
    kubectl = ["kubectl", "--kubeconfig", str(tmp_path / "kubeconfig"), "--validate=false"]
    count = len(generate.generate())
    dry = subprocess.run(
        [*kubectl, "apply", "--dry-run=client", "-f", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("created (dry run)") == count
    assert api.objects == {}
    applied = subprocess.run(
        [*kubectl, "apply", "--server-side", "-f", str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("serverside-applied") == count
    assert len(api.objects) == count
    assert (
        "customresourcedefinition.apiextensions.k8s.io/virtualservices.networking.istio.io serverside-applied"
        in applied.stdout
    )


def test_a_crd_that_is_not_structural_is_refused_as_the_api_server_would(
    api: ApiServerDouble, tmp_path: pathlib.Path
) -> None:
    crd = next(o for o in generate.generate() if o["kind"] == "CustomResourceDefinition")
    properties = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    properties["spec"]["properties"]["hosts"] = {"items": {"type": "string"}}  # no type
    manifest = tmp_path / "crd.yaml"
    manifest.write_text(yaml.safe_dump(crd))
    applied = subprocess.run(
        ["kubectl", "--kubeconfig", str(tmp_path / "kubeconfig"), "--validate=false",
         "apply", "--server-side", "-f", str(manifest)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert applied.returncode != 0
    assert api.objects == {}
    assert "spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.hosts.type: must not be empty" in applied.stderr  # fmt: skip
