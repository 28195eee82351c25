"""A tiny run of the broker benchmark: real store, CA and broker processes, a few calls."""

import asyncio
import pathlib

from tools.bench import broker_bench


def test_a_short_run_measures_every_step_without_errors(tmp_path: pathlib.Path, capsys) -> None:
    args = broker_bench.parse_args(
        ["--cycles", "2", "--catalogs", "5", "--workers", "2", "--seconds", "1", "--no-write"]
    )
    figures = asyncio.run(asyncio.wait_for(broker_bench.measure(args, tmp_path), 120))
    assert figures["lifecycle"]["errors"] == 0
    assert set(figures["lifecycle"]["steps"]) == set(broker_bench.STEPS)
    assert all(s["count"] == 2 for s in figures["lifecycle"]["steps"].values())
    assert figures["catalog"]["count"] == 5
    concurrent = figures["concurrent"]
    assert concurrent["errors"] == 0
    assert concurrent["lifecycles"] >= 1
    assert set(concurrent["cpu_percent"]) == {"broker", "config-store", "istio-ca"}
    broker_bench.print_figures(figures)
    assert "lifecycles/s" in capsys.readouterr().out
