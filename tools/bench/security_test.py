import pathlib
import subprocess
import sys

from tools.bench import report, security

HERE = pathlib.Path(__file__).resolve().parent

LOAD = {
    "ca_key": "ec",
    "mode": "full",
    "workload_key": "ec",
    "workers": 8,
    "per_s": 333.5,
    "latency": {"p50_ms": 23.1, "p99_ms": 44.9},
    "ca_cpu_percent": 89.4,
    "ca_cpu_ms_per_cert": 2.679,
    "client_cpu_percent": 91.5,
    "errors": 1,
}
PATH = {
    "latency": {"p50_ms": 6.26, "p90_ms": 7.06, "p99_ms": 8.47, "max_ms": 10.5},
    "details_sidecar": {"tls_handshakes": 1000, "connections": 1000},
    "client_sidecar": {"tls_handshakes": 0},
    "rounds": [{"details_open_tls": 1, "details_open_plaintext": 0}],
    "envoy_cpu_ms_per_request": {"productpage": 0.05, "details": 0.31},
    "errors": 2,
}
RESULT = {
    "ca": {
        "signing_in_process": [
            {
                "ca_key": "rsa",
                "workload_key": "ec",
                "sign": {"per_s": 3292.4, "ms_each": 0.304},
                "parse_and_sign": {"per_s": 2413.7, "ms_each": 0.414},
            }
        ],
        "over_grpc": [LOAD],
    },
    "startup": {
        "pod": "details-v1",
        "warm": {"summary": {"envoy_cert": {"count": 5, "p50_ms": 503.8, "max_ms": 599.7}}},
    },
    "handshake": {
        "config": {"rate": 100.0, "duration": 5.0, "rounds": 2, "warm_up": 1.0},
        "mtls": {"direct_mtls_new_connection": PATH},
    },
}


def test_parse_args_defaults_and_parts() -> None:
    args = security.parse_args([])
    assert args.parts == list(security.PARTS)
    assert not args.partial
    assert (args.rate, args.duration, args.rounds, args.restarts) == (100.0, 5.0, 2, 5)
    args = security.parse_args(["--part", "ca", "--part", "startup"])
    assert args.parts == ["ca", "startup"]
    assert args.partial


def test_format_figures_shows_every_part() -> None:
    text = security.format_figures(RESULT, report.table)
    assert "3292.4" in text
    assert "2413.7" in text
    assert "333.5" in text
    assert "2.68" in text
    assert "details-v1" in text
    assert "503.8" in text
    assert "direct_mtls_new_connection" in text
    assert "1000" in text
    assert "1/0" in text
    assert "0.05/0.31" in text
    assert security.format_figures({}, report.table) == ""


def test_errors_adds_failed_issuances_and_requests() -> None:
    assert security.errors(RESULT) == 3
    assert security.errors({}) == 0


def test_runs_as_a_script_although_it_shadows_the_security_package() -> None:
    # Python puts tools/bench first on sys.path, where this file would hide `security.ca`.
    done = subprocess.run(
        [sys.executable, str(HERE / "security.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--cold-restarts" in done.stdout
