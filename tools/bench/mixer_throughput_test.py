"""The whole benchmark, tiny: real config store, mixs, null Mixer and a profiled mixs."""

import json
import pathlib
from typing import Any

import pytest

from tools.bench import mixer_throughput, mixer_workload


def test_a_short_run_measures_every_pass_and_stops_every_process(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[mixer_throughput.Process] = []
    real_start = mixer_throughput.start

    def recording_start(*args: Any, **kwargs: Any) -> mixer_throughput.Process:
        process = real_start(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(mixer_throughput, "start", recording_start)
    out = tmp_path / "results"
    code = mixer_throughput.main(
        [
            "--rules", "0", "2",
            "--duration", "0.3",
            "--check-rate", "40",
            "--report-rate", "10",
            "--report-sets", "3",
            "--concurrency", "4",
            "--channels", "2",
            "--profile-rules", "2",
            "--output", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    assert mixer_throughput._STARTED == []
    result = json.loads((out / "mixer.json").read_text())
    assert result["benchmark"] == "mixer"
    assert set(result["rule_sets"]) == {"0", "2"}
    for rules, entry in result["rule_sets"].items():
        expected = str(mixer_workload.expected_check_code(int(rules)))
        assert entry["rules"] == int(rules) + mixer_workload.TELEMETRY_RULES
        assert entry["unexpected_check_answers"] == {}
        for kind in ("check", "report"):
            for mode in ("fixed_rate", "saturation"):
                figures = entry[kind][mode]
                assert figures["errors"] == 0, figures["error_samples"]
                assert figures["ok"] > 0
                assert set(figures["answers"]) == {expected if kind == "check" else "0"}
                assert figures["mixer_cpu_percent"] >= 0
        assert entry["report"]["fixed_rate"]["ok"] == 3  # 10 a second for 0.3 s
        delivered = entry["telemetry_delivered"]
        assert (
            delivered["attribute_sets_sent"]
            == delivered["istio_requests_total_added"]
            == delivered["access_log_lines_added"]
        )
        assert entry["mixer_counters"]["checks"] > 0
        assert entry["memory"]["after_load"]["pss_mib"] > 0
        assert entry["in_process"]["check_answer"] == int(expected)

    baseline = result["null_mixer_baseline"]
    assert baseline["check"]["saturation"]["answers"] == {
        "0": baseline["check"]["saturation"]["ok"]
    }
    assert baseline["report"]["saturation"]["errors"] == 0

    profile = result["profile"]
    assert profile["profile_bytes"] > 0
    assert len(profile["top_cumulative"]) == len(profile["top_own"]) == 15
    assert profile["calls"]["mixer/server/server.py:check"]["calls"] > 0
    assert profile["saturation_under_profiler"]["answers"] == {
        str(mixer_workload.PERMISSION_DENIED): profile["saturation_under_profiler"]["ok"]
    }
    # Every process started was stopped: store and mixs twice, the null Mixer, the profiled pair.
    assert sorted(p.name for p in started) == sorted(["config-store", "mixs"] * 3 + ["null-mixer"])
    for process in started:
        assert process.popen.returncode is not None, process.name
