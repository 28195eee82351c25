import argparse
import pathlib

import pytest

from tools.bench import filter_cpu


def _args(*argv: str) -> argparse.Namespace:
    return filter_cpu.parse_args(list(argv))


def test_without_wasm_flags_the_built_module_runs_unlabelled() -> None:
    assert filter_cpu.modules(_args()) == {"": None}


def test_each_wasm_flag_is_a_label_and_an_existing_module(tmp_path: pathlib.Path) -> None:
    old, new = tmp_path / "old.wasm", tmp_path / "new.wasm"
    old.write_bytes(b"\0asm")
    new.write_bytes(b"\0asm")
    args = _args("--wasm", f"before={old}", "--wasm", f"after={new}")
    assert filter_cpu.modules(args) == {"before": old.resolve(), "after": new.resolve()}
    for bad in ("before", f"={old}", f"before={tmp_path / 'missing.wasm'}"):
        with pytest.raises(SystemExit):
            filter_cpu.modules(_args("--wasm", bad))


def test_the_module_path_goes_into_envoys_wasm_config(tmp_path: pathlib.Path) -> None:
    wasm = tmp_path / "mixer_filter.wasm"
    config = filter_cpu.CASES["report"]
    bootstrap = filter_cpu.bootstrap("127.0.45.1", 10145, 9091, config, wasm)
    chain = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]
    filters = chain["filters"][0]["typed_config"]["http_filters"]
    vm = filters[0]["typed_config"]["config"]["vm_config"]
    assert vm["code"]["local"]["filename"] == str(wasm)
    assert filter_cpu.is_wasm(config)
    assert filter_cpu.is_wasm(filter_cpu.CASES["noop_wasm"])
    assert not filter_cpu.is_wasm(None)
    assert not filter_cpu.is_wasm(filter_cpu.CASES["noop_native"])


def test_differences_are_to_no_filter_for_plain_and_labelled_cases() -> None:
    results = {
        "no_filter": {"requests": 10, "envoy_cpu_us_per_request": 40.0},
        "noop_native": {"requests": 10, "envoy_cpu_us_per_request": 42.5},
        "report": {
            "before": {"requests": 10, "envoy_cpu_us_per_request": 90.0},
            "after": {"requests": 10, "envoy_cpu_us_per_request": 70.25},
        },
    }
    out = filter_cpu.with_differences(results)
    assert out["no_filter"]["filter_us_per_request"] == 0.0
    assert out["noop_native"]["filter_us_per_request"] == 2.5
    assert out["report"]["before"]["filter_us_per_request"] == 50.0
    assert out["report"]["after"]["filter_us_per_request"] == 30.2


def test_cases_must_keep_the_base() -> None:
    with pytest.raises(SystemExit):
        filter_cpu.run(_args("--cases", "report"))
