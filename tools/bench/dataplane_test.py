"""The data-plane benchmark's arithmetic: figures from one round's paths, medians over rounds."""

from __future__ import annotations

from typing import Any

from tools.bench import dataplane

PATHS = ("direct", "floor", "floor_mtls", "sidecars", "sidecars_demo", "mixer_nocache", "mixer")


def _round(scale: float) -> dict[str, Any]:
    """A round whose every latency is `scale` times the path's index (direct the fastest)."""
    out: dict[str, Any] = {}
    for i, name in enumerate(PATHS, start=1):
        envoys = () if name == "direct" else ("client_envoy", "server_envoy")
        cpu = {role: 0.1 * i for role in envoys} | {"mixs": 0.01 * i}
        out[name] = {
            "latency": {f"{q}_ms": scale * i * k for q, k in (("p50", 1), ("p90", 2), ("p99", 3))},
            "cpu_vcpu_per_1000_rps": cpu,
            "envoys": list(envoys),
        }
    return out


def test_the_figures_are_ratios_to_the_floor_of_the_same_round():
    figures = dataplane.figures(_round(1.0))
    # added p90: sidecars (4*2) - direct (1*2) = 6, floor (2*2) - 2 = 2.
    assert figures["sidecars_vs_floor"]["added_p90_ratio"] == 3.0
    assert figures["sidecars_vs_floor"]["cpu_ratio"] == 2.0  # 0.8 against 0.4
    mixer = figures["mixer_vs_sidecars"]
    assert mixer["added_p90_ms"] == 6.0  # mixer (7*2) - sidecars (4*2)
    assert mixer["mixs_vcpu_per_1000_rps"] == 0.07


def test_each_figure_has_its_median_over_rounds_beside_every_rounds_value():
    rounds = [dataplane.figures(_round(s)) for s in (1.0, 3.0, 2.0)]
    medians = dataplane.median_figures(rounds)
    added = medians["mixer_vs_sidecars"]["added_p90_ms"]
    assert added == {"median": 12.0, "rounds": [6.0, 18.0, 12.0]}
    assert medians["sidecars_vs_floor"]["targets"] == rounds[0]["sidecars_vs_floor"]["targets"]
