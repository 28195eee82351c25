"""The library built for wasm32-wasi runs, and does exactly what the native build does.

Runs the self-test (selftest.cc) natively and, under Node's WASI, as a wasm command module,
and compares their output byte for byte; then checks that the reactor build (how the Envoy
filter links it) imports nothing but WASI functions that Envoy's wasm host provides, and that
its exported entry point runs clean.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).absolute().parent
ROOT = HERE.parents[1]
NODE = shutil.which("node") or shutil.which("nodejs")

# The WASI (preview1) functions Envoy's proxy-wasm host implements.
ENVOY_WASI = {
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_close",
    "fd_fdstat_get",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_read",
    "fd_seek",
    "fd_write",
    "poll_oneoff",
    "proc_exit",
    "random_get",
    "sched_yield",
}


# The same flags as BUILD.bazel's, for plain pytest runs without Bazel's outputs.
WASM_FLAGS = ["--target=wasm32-wasi", "-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti"]
NATIVE_FLAGS = ["-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti"]


def compile_selftest(name: str, out_dir: pathlib.Path) -> pathlib.Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = out_dir / "gen"
    (gen / "mixerclient").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "mixerclient/gen_global_dictionary.py"),
            str(ROOT / "api/mixer/v1/global_dictionary.yaml"),
            "-o",
            str(gen / "mixerclient/global_dictionary_data.inc"),
        ],
        check=True,
        timeout=60,
    )
    sources = [
        str(p)
        for p in sorted((ROOT / "mixerclient").glob("*.cc"))
        if not p.name.endswith("_test.cc")
    ]
    sources.append(str(HERE / "selftest.cc"))
    flags = {
        "selftest_native": NATIVE_FLAGS,
        "selftest.wasm": [*WASM_FLAGS, "-Wl,--gc-sections"],
        "selftest_reactor.wasm": [
            *WASM_FLAGS,
            "-DMIXERCLIENT_WASM_REACTOR",
            "-mexec-model=reactor",
            "-Wl,--gc-sections",
            "-Wl,--strip-all",
        ],
    }[name]
    out = out_dir / name
    subprocess.run(
        ["clang++", *flags, f"-I{ROOT}", f"-I{gen}", *sources, "-o", str(out)],
        check=True,
        timeout=600,
    )
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The Bazel output next to this file (runfiles, or bazel-bin after `bazel build`); under
    plain pytest without them, compiled here with the same flags."""

    def find(name: str) -> pathlib.Path:
        for base in (HERE, ROOT / "bazel-bin" / "mixerclient" / "wasm"):
            if (base / name).exists():
                return base / name
        return compile_selftest(name, tmp_path_factory.getbasetemp() / "mixerclient-wasm")

    return find


def run_node(*args: str) -> subprocess.CompletedProcess[str]:
    assert NODE, "node (Debian's nodejs) is needed to run wasm32-wasi modules"
    env = {**os.environ, "NODE_NO_WARNINGS": "1"}
    return subprocess.run(
        [NODE, str(HERE / "run_wasi.js"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_wasm_build_prints_what_the_native_build_prints(built):
    native = subprocess.run(
        [str(built("selftest_native"))], capture_output=True, text=True, timeout=60, check=False
    )
    assert native.returncode == 0, native.stdout + native.stderr
    wasm = run_node(str(built("selftest.wasm")))
    assert wasm.returncode == 0, wasm.stdout + wasm.stderr
    assert wasm.stdout == native.stdout
    assert "selftest ok" in wasm.stdout
    assert "check_request 0a" in wasm.stdout  # the encoded request is there to compare


def wasm_imports(data: bytes) -> list[tuple[str, str]]:
    """(module, name) of every import in a wasm binary (section 2)."""

    def leb(pos: int) -> tuple[int, int]:
        result = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return result, pos

    def name(pos: int) -> tuple[str, int]:
        n, pos = leb(pos)
        return data[pos : pos + n].decode(), pos + n

    assert data[:4] == b"\0asm", "not a wasm module"
    pos = 8
    imports = []
    while pos < len(data):
        section, pos = data[pos], pos + 1
        size, pos = leb(pos)
        end = pos + size
        if section == 2:
            count, p = leb(pos)
            for _ in range(count):
                module, p = name(p)
                field, p = name(p)
                kind, p = data[p], p + 1
                if kind == 0:  # function: type index
                    _, p = leb(p)
                elif kind == 1:  # table: reftype, limits
                    p += 1
                    flags, p = leb(p + 0)
                    _, p = leb(p)
                    if flags & 1:
                        _, p = leb(p)
                elif kind == 2:  # memory: limits
                    flags, p = leb(p)
                    _, p = leb(p)
                    if flags & 1:
                        _, p = leb(p)
                else:  # global: valtype, mutability
                    p += 2
                imports.append((module, field))
        pos = end
    return imports


def test_reactor_imports_only_what_envoys_wasm_host_provides(built):
    data = built("selftest_reactor.wasm").read_bytes()
    imports = wasm_imports(data)
    assert imports, "a reactor using libc imports some WASI functions"
    unexpected = [i for i in imports if i[0] != "wasi_snapshot_preview1" or i[1] not in ENVOY_WASI]
    assert unexpected == []
    assert b"mixerclient_selftest" in data
    assert b"_initialize" in data


def test_reactor_entry_point_runs_clean(built):
    result = run_node(str(built("selftest_reactor.wasm")), "--reactor", "mixerclient_selftest")
    assert result.returncode == 0, result.stdout + result.stderr
