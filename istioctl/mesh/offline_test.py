"""version, dashboard and bug-report when nothing of the mesh answers: clear words, and
whatever can still be said or collected."""

from __future__ import annotations

import argparse
import socket
import tarfile

import pytest

from istioctl import main as istioctl
from istioctl.mesh import dashboard
from pkg.version import buildinfo


@pytest.fixture
def nowhere() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = istioctl.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_without_a_control_plane(capsys, nowhere):
    code, out, err = run(capsys, "--pilot", nowhere, "version")
    assert (code, out) == (1, f"client version: {buildinfo.VERSION}\n")
    assert err.startswith(f"error: the control plane's version is unknown: cannot reach {nowhere}/version: connection refused")  # fmt: skip
    assert run(capsys, "version", "--remote=false", "-o", "yaml")[1].startswith("clientVersion:\n  version:")  # fmt: skip


def test_dashboards_say_when_nothing_answers(capsys, nowhere):
    code, out, err = run(capsys, "dashboard", "prometheus", "--address", nowhere, "--browser=false")
    assert (code, out) == (1, "")
    assert f"nothing answers at {nowhere}: is Prometheus (make bookinfo starts it) running?" in err
    code, _, err = run(
        capsys, "--pilot", nowhere, "--config-store", nowhere, "dashboard", "envoy", "p"
    )
    assert code == 1
    assert 'cannot find pod "p.default": neither Pilot nor the config store answers' in err


def test_the_add_ons_are_looked_for_beside_pilot(capsys, nowhere, monkeypatch):
    for variable in ("PROMETHEUS_URL", "ISTIO_MESH_PAGE_URL", "ZIPKIN_URL"):
        monkeypatch.delenv(variable, raising=False)
    for name, url in (
        ("prometheus", "http://127.0.23.100:9090"),
        ("mesh", "http://127.0.23.100:20001"),
        ("zipkin", "http://127.0.23.100:9411/api/v2/services"),
    ):
        args = argparse.Namespace(address=None, dashboard=name, pilot="http://127.0.23.100:15014")
        assert dashboard._url(args) == url
    args = argparse.Namespace(address=None, dashboard="mesh", pilot="http://[::1]:15014")
    assert dashboard._url(args) == "http://[::1]:20001"
    monkeypatch.setenv("ZIPKIN_URL", nowhere + "/")
    code, _, err = run(capsys, "dashboard", "zipkin", "--browser=false")
    assert code == 1
    assert f"nothing answers at {nowhere}: is the Zipkin collector" in err


def test_bug_report_collects_what_it_can(capsys, nowhere, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "logs" / "pilot-discovery.log").write_text("started\n")
    (run_dir / "pods" / "reviews-v1").mkdir(parents=True)
    (run_dir / "pods" / "reviews-v1" / "envoy.log").write_text("envoy\n")
    code, out, err = run(
        capsys, "--pilot", nowhere, "--config-store", nowhere, "bug-report",
        "--run-dir", str(run_dir), "--output-dir", str(tmp_path / "out"), "--timeout", "2s",
    )  # fmt: skip
    archive = tmp_path / "out" / "bug-report.tar.gz"
    assert (code, out) == (0, f"{archive}\n")
    assert "Warning: not collected: Pilot's version: cannot reach" in err
    with tarfile.open(archive) as tar:
        assert tar.extractfile("bug-report/logs/pilot-discovery.log").read() == b"started\n"
        assert tar.extractfile("bug-report/logs/pods/reviews-v1/envoy.log").read() == b"envoy\n"
        errors = tar.extractfile("bug-report/errors.txt").read().decode()
    assert "the config store's resources: cannot reach the config store" in errors
    assert "Pilot's /debug/syncz" in errors
