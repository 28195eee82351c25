"""`istioctl kube-inject`: with Istio's own settings as files, the output is Istio's golden
file; with none, the ConfigMaps come from the config store, or what install would apply."""

from __future__ import annotations

import json
import pathlib
import textwrap

import pytest
import yaml

from istioctl import main as istioctl
from pilot.configstore.testing import StoreThread
from pkg.inject import testing as compare

ROOT = pathlib.Path(__file__).absolute().parents[2]
ISTIO = ROOT / "pkg/inject/testdata/istio"


def _istio_files(tmp_path: pathlib.Path) -> list[str]:
    """Istio's template as the ConfigMap's `config`, its values, and its default mesh."""
    config = tmp_path / "inject-config.yaml"
    template = (ISTIO / "injection-template.yaml").read_text()
    config.write_text(
        "policy: enabled\ntemplates:\n  sidecar: |\n" + textwrap.indent(template, "    ")
    )
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text(
        "trustDomain: cluster.local\ndefaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n"
    )
    return [
        "--injectConfigFile",
        str(config),
        "--valuesFile",
        str(ISTIO / "values.json"),
        "--meshConfigFile",
        str(mesh),
    ]


@pytest.mark.parametrize("name", ["hello", "statefulset", "cronjob", "job", "pod"])
def test_with_istios_files_the_output_is_istios(
    name: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.yaml"
    code = istioctl.main(
        ["kube-inject", "-f", str(ISTIO / f"{name}.yaml"), "-o", str(out), *_istio_files(tmp_path)]
    )
    assert code == 0, capsys.readouterr().err
    problems = compare.diff_streams(
        out.read_text(), (ISTIO / f"{name}-old-version.yaml.injected").read_text()
    )
    assert not problems, "\n".join(problems)


def test_without_files_it_reads_the_store_or_uses_the_install_defaults(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with StoreThread(tmp_path / "store.db") as store:
        code = istioctl.main(
            ["--config-store", store.url, "kube-inject", "-f", str(ISTIO / "hello.yaml")]
        )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (
        "ConfigMap istio-system/istio-sidecar-injector not found; using the one `istioctl install` applies"
        in err
    )
    deployment = next(yaml.safe_load_all(out))
    spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["hello", "istio-proxy"]
    assert [c["name"] for c in spec["initContainers"]] == ["istio-init"]
    proxy = spec["containers"][1]
    assert proxy["image"] == "docker.io/istiopy/proxyv2:0.1.0"
    assert "--labels=app=hello,tier=backend,track=stable" in proxy["args"]
    status = json.loads(
        deployment["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/status"]
    )
    assert status["containers"] == ["istio-proxy"]
    assert status["initContainers"] == ["istio-init"]


def test_refusals_are_one_clear_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _istio_files(tmp_path)
    bad = ISTIO / "traffic-annotations-bad-includeinboundports.yaml"
    assert istioctl.main(["kube-inject", "-f", str(bad), *files]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: Deployment traffic: invalid value 'bad' for annotation 'traffic.sidecar.istio.io/includeInboundPorts'"
    )
    assert istioctl.main(["kube-inject", "-f", str(tmp_path / "missing.yaml"), *files]) == 1
    assert "missing.yaml: No such file or directory" in capsys.readouterr().err
    broken = tmp_path / "broken-config.yaml"
    broken.write_text("templates:\n  sidecar: '{{ if }}'\n")
    assert (
        istioctl.main(
            [
                "kube-inject",
                "-f",
                str(ISTIO / "hello.yaml"),
                *files[2:],
                "--injectConfigFile",
                str(broken),
            ]
        )
        == 1
    )
    assert "template 'sidecar'" in capsys.readouterr().err
