"""`istioctl kube-inject`: with the injector's settings as files (the ConfigMaps' keys, or
the whole ConfigMaps), those settings are used; with none, the ConfigMaps come from the
config store, or what install would apply."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

from istioctl import main as istioctl
from manifests import generate
from pilot.configstore.testing import StoreThread

ROOT = pathlib.Path(__file__).absolute().parents[2]
TESTDATA = ROOT / "pkg/inject/testdata"


def _install_files(tmp_path: pathlib.Path, *sets: str, whole: bool = False) -> list[str]:
    """The install's injector and mesh ConfigMaps (with `--set`s) as kube-inject's files:
    each key in a file of its own, or (whole) the ConfigMaps as kubectl prints them."""
    values = generate.default_values()
    for flag in sets:
        values = generate.apply_set(values, flag)
    injector = generate.injector_configmap(values, "istio-system")
    mesh = generate.mesh_configmap(values, "istio-system")
    files = {"config": injector["data"]["config"], "values": injector["data"]["values"],
             "mesh": mesh["data"]["mesh"]}  # fmt: skip
    if whole:
        files = {"config": yaml.safe_dump(injector), "values": yaml.safe_dump(injector),
                 "mesh": yaml.safe_dump(mesh)}  # fmt: skip
    for key, text in files.items():
        (tmp_path / key).write_text(text)
    return ["--injectConfigFile", str(tmp_path / "config"), "--valuesFile", str(tmp_path / "values"),
            "--meshConfigFile", str(tmp_path / "mesh")]  # fmt: skip


def _pods(text: str) -> list[dict]:
    """Each document's pod template (CronJob: its job template's metadata and pod spec)."""
    out = []
    for document in yaml.safe_load_all(text):
        if document is None:  # kube-inject ends every document with ---
            continue
        if document["kind"] == "CronJob":
            job = document["spec"]["jobTemplate"]
            out.append({"metadata": job["metadata"], "spec": job["spec"]["template"]["spec"]})
        else:
            out.append(document["spec"]["template"])
    return out


def _proxy(pod: dict) -> dict:
    spec = pod["spec"]
    return next(
        c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == "istio-proxy"
    )


@pytest.mark.parametrize("whole", [False, True], ids=["keys", "configmaps"])
def test_the_settings_in_the_files_are_used(
    whole: bool, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _install_files(tmp_path, "values.global.imagePullPolicy=Always",
                           "meshConfig.defaultConfig.interceptionMode=TPROXY", whole=whole)  # fmt: skip
    out = tmp_path / "out.yaml"
    code = istioctl.main(
        ["kube-inject", "-f", str(TESTDATA / "workloads.yaml"), "-o", str(out), *files]
    )
    assert code == 0, capsys.readouterr().err
    pods = _pods(out.read_text())
    assert len(pods) == 6
    for pod in pods:
        spec = pod["spec"]
        assert [c["name"] for c in spec["containers"]][-1] == "istio-proxy"
        assert [c["name"] for c in spec["initContainers"]] == ["istio-init"]
        assert _proxy(pod)["imagePullPolicy"] == "Always"  # from the values file
        init_args = spec["initContainers"][0]["args"]
        assert init_args[init_args.index("-m") + 1] == "TPROXY"  # from the mesh file
        status = json.loads(pod["metadata"]["annotations"]["sidecar.istio.io/status"])
        assert status["containers"] == ["istio-proxy"]


def test_native_sidecar_puts_the_proxy_among_the_init_containers(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _install_files(tmp_path)
    args = ["kube-inject", "-f", str(TESTDATA / "deployment.yaml"), "--native-sidecar", *files]
    assert istioctl.main(args) == 0
    [pod] = _pods(capsys.readouterr().out)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["ratings"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["istio-init", "istio-proxy"]
    assert _proxy(pod)["restartPolicy"] == "Always"


def test_skipped_pods_are_warned_about_and_passed_through(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = TESTDATA / "skipped.yaml"
    assert istioctl.main(["kube-inject", "-f", str(source), *_install_files(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert list(yaml.safe_load_all(out)) == [*yaml.safe_load_all(source.read_text()), None]
    assert err.splitlines() == [
        '===> Skipping injection because Deployment "legacy" has sidecar injection disabled',
        '===> Skipping injection because DaemonSet "monitoring/node-exporter" has host networking enabled',
    ]


def test_without_files_it_reads_the_store_or_uses_the_install_defaults(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with StoreThread(tmp_path / "store.db") as store:
        code = istioctl.main(
            ["--config-store", store.url, "kube-inject", "-f", str(TESTDATA / "deployment.yaml")]
        )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (
        "ConfigMap istio-system/istio-sidecar-injector not found; using the one `istioctl install` applies"
        in err
    )
    deployment = next(yaml.safe_load_all(out))
    spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["ratings", "istio-proxy"]
    assert [c["name"] for c in spec["initContainers"]] == ["istio-init"]
    proxy = spec["containers"][1]
    assert proxy["image"] == "docker.io/istiopy/proxyv2:0.1.0"  # values.yaml's hub and tag
    assert (
        "--labels=app=ratings,security.istio.io/tlsMode=istio,"
        "service.istio.io/canonical-name=ratings,service.istio.io/canonical-revision=v2,version=v2"
    ) in proxy["args"]
    status = json.loads(
        deployment["spec"]["template"]["metadata"]["annotations"]["sidecar.istio.io/status"]
    )
    assert status["containers"] == ["istio-proxy"]
    assert status["initContainers"] == ["istio-init"]


def test_refusals_are_one_clear_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _install_files(tmp_path)
    bad = tmp_path / "bad.yaml"
    deployment = yaml.safe_load((TESTDATA / "deployment.yaml").read_text())
    deployment["spec"]["template"]["metadata"]["annotations"] = {
        "traffic.sidecar.istio.io/includeInboundPorts": "bad"
    }
    bad.write_text(yaml.safe_dump(deployment))
    assert istioctl.main(["kube-inject", "-f", str(bad), *files]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: Deployment shop/ratings: invalid value 'bad' for annotation 'traffic.sidecar.istio.io/includeInboundPorts'"
    )
    assert len(err.splitlines()) == 1
    assert istioctl.main(["kube-inject", "-f", str(tmp_path / "missing.yaml"), *files]) == 1
    assert "missing.yaml: No such file or directory" in capsys.readouterr().err
    broken = tmp_path / "broken-config.yaml"
    broken.write_text("templates:\n  sidecar: '{{ if }}'\n")
    source = str(TESTDATA / "deployment.yaml")
    assert (
        istioctl.main(["kube-inject", "-f", source, *files[2:], "--injectConfigFile", str(broken)])
        == 1
    )
    assert "template 'sidecar'" in capsys.readouterr().err
