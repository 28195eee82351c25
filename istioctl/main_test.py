"""istioctl against a real config store: Bookinfo's routing samples, round trips, refusals."""

from __future__ import annotations

import io
import json
import pathlib
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from istioctl import main as istioctl
from pilot.configstore.testing import StoreThread
from pkg.config import loader
from pkg.config.resource import Resource
from pkg.testing import programs

ROOT = pathlib.Path(__file__).absolute().parents[1]
BOOKINFO = ROOT / "samples" / "bookinfo" / "networking"
GROUP = "/apis/networking.istio.io/v1alpha3"


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Iterator[StoreThread]:
    with StoreThread(tmp_path / "store.db") as running:
        yield running


def cli(store: StoreThread, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = istioctl.main(["--config-store", store.url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def store_version(store: StoreThread) -> str:
    with urllib.request.urlopen(store.url + GROUP + "/virtualservices", timeout=10) as response:
        return json.load(response)["metadata"]["resourceVersion"]


def last_versions(paths: list[pathlib.Path]) -> dict[tuple[str, str], Resource]:
    """What the store should hold after applying the files in order: the last version wins."""
    final: dict[tuple[str, str], Resource] = {}
    for path in paths:
        for resource in loader.load_file(path):
            final[(resource.schema.kind, resource.metadata.name)] = resource
    return final


def test_apply_bookinfo_directory_then_get_yaml_round_trips(store, capsys):
    code, out, err = cli(store, capsys, "apply", "-f", str(BOOKINFO))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "gateway.networking.istio.io/bookinfo-gateway created"
    assert "destinationrule.networking.istio.io/reviews created" in lines
    assert "virtualservice.networking.istio.io/reviews created" in lines
    assert "virtualservice.networking.istio.io/reviews configured" in lines  # later samples

    expected = last_versions(sorted(BOOKINFO.glob("*.yaml")))
    for kind in ("vs", "dr", "gw"):
        code, out, _ = cli(store, capsys, "get", kind, "-o", "yaml")
        assert code == 0
        for resource in loader.load_text(out):
            wanted = expected.pop((resource.schema.kind, resource.metadata.name))
            assert resource.spec == wanted.spec
            assert resource.metadata.resource_version
            assert resource.metadata.uid
    assert expected == {}

    # Everything is as the files say: applying the last reviews sample again changes nothing.
    code, out, _ = cli(
        store, capsys, "apply", "-f", str(BOOKINFO / "virtual-service-reviews-v3.yaml")
    )
    assert out == "virtualservice.networking.istio.io/reviews unchanged\n"


def test_get_short_table_and_kind_aliases(store, capsys):
    cli(store, capsys, "apply", "-f", str(BOOKINFO / "virtual-service-all-v1.yaml"))
    cli(store, capsys, "apply", "-n", "bookinfo", "-f", str(BOOKINFO / "destination-rule-all.yaml"))
    outputs = {
        alias: cli(store, capsys, "get", alias)[1]
        for alias in ("vs", "virtualservice", "virtualservices", "VirtualService")
    }
    # The same table whatever the alias (but the AGE column, which a second may tick).
    assert (
        len({tuple(tuple(r.split()[:-1]) for r in out.splitlines()) for out in outputs.values()})
        == 1
    )
    table = outputs["vs"].splitlines()
    assert table[0].split() == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert [row.split()[0] for row in table[1:]] == ["details", "productpage", "ratings", "reviews"]
    assert table[4].split()[1] == '["reviews"]'

    code, out, err = cli(store, capsys, "get", "dr")
    assert (code, out, err) == (0, "", "No resources found in default namespace.\n")
    _, out, _ = cli(store, capsys, "get", "destinationrules", "-n", "bookinfo")
    assert out.splitlines()[0].split() == ["NAME", "HOST", "AGE"]
    _, out, _ = cli(store, capsys, "get", "dr", "-A")
    assert out.splitlines()[0].split() == ["NAMESPACE", "NAME", "HOST", "AGE"]
    assert out.splitlines()[1].split()[:3] == ["bookinfo", "details", "details"]

    code, out, _ = cli(store, capsys, "get", "vs", "reviews", "-o", "json")
    assert code == 0
    assert json.loads(out)["metadata"]["name"] == "reviews"
    code, _, err = cli(store, capsys, "get", "vs", "reviews", "nope")
    assert code == 1
    assert (
        err
        == 'Error from server (NotFound): virtualservices.networking.istio.io "nope" not found\n'
    )
    code, _, err = cli(store, capsys, "get", "widgets")
    assert code == 1
    assert err.startswith("error: 'widgets' is not a known resource type; known types: ")


def test_create_replace_and_delete(store, capsys, tmp_path):
    sample = str(BOOKINFO / "virtual-service-reviews-80-20.yaml")
    assert cli(store, capsys, "create", "-f", sample)[:2] == (
        0,
        "virtualservice.networking.istio.io/reviews created\n",
    )
    code, _, err = cli(store, capsys, "create", "-f", sample)
    assert code == 1
    assert err == (
        "Error from server (AlreadyExists): virtualservices.networking.istio.io "
        '"reviews" already exists\n'
    )

    # get -o yaml, edit, replace: the file's resourceVersion makes the replace conditional.
    exported = tmp_path / "reviews.yaml"
    exported.write_text(cli(store, capsys, "get", "vs", "reviews", "-o", "yaml")[1])
    edited = yaml.safe_load(exported.read_text())
    edited["spec"]["http"][0]["route"][0]["weight"] = 70
    edited["spec"]["http"][0]["route"][1]["weight"] = 30
    exported.write_text(yaml.safe_dump(edited))
    assert cli(store, capsys, "replace", "-f", str(exported))[:2] == (
        0,
        "virtualservice.networking.istio.io/reviews replaced\n",
    )
    code, out, _ = cli(store, capsys, "get", "vs", "reviews", "-o", "yaml")
    assert [r.weight for r in loader.load_text(out)[0].spec.http[0].route] == [70, 30]
    code, _, err = cli(store, capsys, "replace", "-f", str(exported))  # stale now
    assert code == 1
    assert err.startswith("Error from server (Conflict): Operation cannot be fulfilled on ")
    # apply takes the current version itself, so the same file applies.
    assert cli(store, capsys, "apply", "-f", str(exported))[1] == (
        "virtualservice.networking.istio.io/reviews unchanged\n"
    )

    cli(store, capsys, "apply", "-f", str(BOOKINFO / "destination-rule-all.yaml"))
    code, out, err = cli(store, capsys, "delete", "dr", "reviews", "ratings", "nope")
    assert code == 1
    assert out.splitlines() == [
        "destinationrule.networking.istio.io/reviews deleted",
        "destinationrule.networking.istio.io/ratings deleted",
    ]
    assert "nope" in err
    code, out, _ = cli(store, capsys, "delete", "-f", sample)
    assert (code, out) == (0, "virtualservice.networking.istio.io/reviews deleted\n")
    code, out, err = cli(store, capsys, "get", "vs")
    assert (code, out) == (0, "")


def test_an_invalid_file_is_refused_locally_and_nothing_is_sent(store, capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1alpha3\n"
        "kind: VirtualService\n"
        "metadata: {name: ratings}\n"
        "spec:\n"
        "  hosts: [ratings]\n"
        "  http:\n"
        "  - route:\n"
        "    - destination: {host: ratings}\n"
        "      weight: -5\n"
    )
    with pytest.raises(loader.LoadError) as expected:
        loader.load_file(bad)
    good = str(BOOKINFO / "virtual-service-all-v1.yaml")
    code, out, err = cli(store, capsys, "apply", "-f", good, "-f", str(bad))
    assert (code, out) == (1, "")
    assert err == str(expected.value) + "\n"
    assert "spec.http[0].route[0].weight: weight -5 < 0" in err
    assert store_version(store) == "0"  # not even the good file went out

    code, _, err = cli(store, capsys, "apply", "-f", str(tmp_path / "missing.yaml"))
    assert (code, err) == (1, f'error: the path "{tmp_path / "missing.yaml"}" does not exist\n')


def test_removed_fields_are_applied_with_a_warning(store, capsys, tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(
        "apiVersion: networking.istio.io/v1alpha3\n"
        "kind: VirtualService\n"
        "metadata: {name: ratings}\n"
        "spec:\n"
        "  hosts: [ratings]\n"
        "  http:\n"
        "  - websocketUpgrade: true\n"
        "    appendHeaders: {x-from: old}\n"
        "    route:\n"
        "    - destination: {host: ratings}\n"
    )
    code, out, err = cli(store, capsys, "apply", "-f", str(old))
    assert (code, out) == (0, "virtualservice.networking.istio.io/ratings created\n")
    where = f"Warning: {old}: document 1 (VirtualService default/ratings): spec.http[0]"
    assert err.splitlines() == [
        f"{where}.websocketUpgrade: removed from Istio's API (websocket upgrades are done "
        "automatically since Istio 1.0); ignored",
        f"{where}.appendHeaders: removed from Istio's API; read as spec.http[0].headers.request.add",
    ]
    code, out, _ = cli(store, capsys, "get", "virtualservice", "ratings", "-o", "yaml")
    stored = yaml.safe_load(out)["spec"]["http"][0]
    assert stored["headers"] == {"request": {"add": {"x-from": "old"}}}
    assert "websocketUpgrade" not in stored


def test_namespace_flag_must_agree_with_the_file(store, capsys, tmp_path):
    placed = tmp_path / "placed.yaml"
    placed.write_text(
        (BOOKINFO / "virtual-service-reviews-v3.yaml")
        .read_text()
        .replace("name: reviews", "name: reviews\n  namespace: bookinfo")
    )
    code, _, err = cli(store, capsys, "apply", "-n", "default", "-f", str(placed))
    assert code == 1
    assert "metadata.namespace: is 'bookinfo' but the request is for namespace 'default'" in err
    assert cli(store, capsys, "apply", "-f", str(placed))[0] == 0
    assert (
        cli(store, capsys, "get", "vs", "-n", "bookinfo")[1].splitlines()[1].startswith("reviews")
    )


def test_stdin(store, capsys, monkeypatch):
    text = (BOOKINFO / "bookinfo-gateway.yaml").read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code, out, _ = cli(store, capsys, "apply", "-f", "-")
    assert code == 0
    assert out.splitlines() == [
        "gateway.networking.istio.io/bookinfo-gateway created",
        "virtualservice.networking.istio.io/bookinfo created",
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert cli(store, capsys, "delete", "-f", "-")[1].endswith("/bookinfo deleted\n")


def test_an_unreachable_store_is_one_clear_line(capsys, tmp_path):
    with StoreThread(tmp_path / "gone.db") as stopped:
        url = stopped.url
    code = istioctl.main(["--config-store", url, "get", "vs"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"error: cannot reach the config store at {url}: connection refused")


def test_usage_errors_return_instead_of_exiting(capsys):
    assert istioctl.main(["get"]) == 64  # Istio's ExitIncorrectUsage
    assert "required: kind" in capsys.readouterr().err
    assert istioctl.main([]) == 64
    assert istioctl.main(["--help"]) == 0
    assert "apply" in capsys.readouterr().out


def test_as_a_process_with_the_store_from_the_environment(store, tmp_path):
    env = programs.environ(ISTIO_CONFIG_STORE=store.url)
    command = programs.command("istioctl.main")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *argv], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )

    applied = run("apply", "-f", str(BOOKINFO / "destination-rule-all.yaml"))
    assert (applied.returncode, applied.stderr) == (0, ""), applied.stderr
    assert applied.stdout.count(" created\n") == 4
    got = run("get", "destinationrule", "reviews", "-o", "yaml")
    assert got.returncode == 0
    (reviews,) = loader.load_text(got.stdout)
    assert [s.name for s in reviews.spec.subsets] == ["v1", "v2", "v3"]
    refused = run("get", "dr", "nope")
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error from server (NotFound): ")
