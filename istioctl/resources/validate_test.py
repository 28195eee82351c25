"""`istioctl validate -f`: Istio's verdicts, messages and exit status."""

from __future__ import annotations

import io
import pathlib
import sys

from istioctl import main as istioctl

ROOT = pathlib.Path(__file__).absolute().parents[2]
GOOD = ROOT / "samples" / "bookinfo" / "networking" / "virtual-service-all-v1.yaml"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = istioctl.main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_files_say_so(capsys):
    code, out, err = run(capsys, "-f", str(GOOD), "-f", str(GOOD.parent / "bookinfo-gateway.yaml"))
    assert (code, err) == (0, "")
    assert out == f'"{GOOD}" is valid\n"{GOOD.parent / "bookinfo-gateway.yaml"}" is valid\n'


def test_every_problem_is_listed_with_its_resource(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GOOD.read_text().replace("subset: v1\n", "subset: v1\n      weight: -5\n", 1)
        + "---\napiVersion: networking.istio.io/v1alpha3\nkind: Gateway\n"
        "metadata: {name: gw, namespace: web}\nspec:\n  servers:\n  - port: {number: 0}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: not-checked}\nspec: {}\n"
    )
    code, out, err = run(capsys, "-f", str(bad))
    assert (code, out) == (1, "")
    lines = err.splitlines()
    count = int(lines[0].split()[1])
    assert lines[0] == f"Error: {count} errors occurred:"
    assert lines[1].startswith("\t* VirtualService//productpage: spec.http[0].route")
    assert any(line.startswith("\t* Gateway/web/gw: spec.servers[0]") for line in lines)
    assert len([line for line in lines if line.startswith("\t* ")]) == count
    assert "not-checked" not in err


def test_stdin_and_unreadable_input(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdin", io.StringIO(GOOD.read_text()))
    assert run(capsys, "-f", "-")[:2] == (0, "validation succeed\n")
    (tmp_path / "broken.yaml").write_text("kind: [")
    code, _, err = run(capsys, "-f", str(tmp_path / "broken.yaml"))
    assert code == 1
    assert "failed to decode file" in err
    code, _, err = run(capsys, "-f", str(tmp_path / "missing.yaml"))
    assert code == 1
    assert "does not exist" in err
    assert run(capsys)[0] == 64  # -f is required
