"""A command imports only what it uses: the parser nothing heavy, `get` no asyncio, no
aiohttp, no protobuf and no validators. (How fast that is, tools/bench/istioctl_startup.py
measures.)"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).absolute().parents[1]
PROBE = """
import contextlib, io, json, sys
from istioctl import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main.main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported(*argv: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    return result["code"], set(result["modules"])


def heavy(modules: set[str], *prefixes: str) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


def test_help_builds_the_parser_only():
    code, modules = imported("--help")
    assert code == 0
    assert heavy(modules, "asyncio", "aiohttp", "google", "yaml", "pkg", "dataclasses") == set()
    assert heavy(modules, "istioctl") == {"istioctl", "istioctl.main", *(
        f"istioctl.cmd.{m}" for m in ("handler", "flags", "config", "analyze", "proxy", "experimental",
                                      "version", "dashboard", "bugreport", "install")
    )} | {"istioctl.cmd"}  # fmt: skip


def test_get_needs_neither_asyncio_nor_the_validators_nor_protobuf():
    code, modules = imported("--config-store", "http://127.0.0.1:1", "get", "vs")
    assert code == 1  # nothing listens there; the imports are made by then
    assert "pkg.kube.syncclient" in modules
    # The server prints the table and sends the objects: nothing is parsed into a proto.
    assert heavy(modules, "asyncio", "aiohttp", "google", "api", "pkg.config.loader", "pkg.config.validation", "pkg.lang") == set()  # fmt: skip


def test_version_without_the_control_plane_needs_no_config_kinds():
    code, modules = imported("version", "--remote=false")
    assert code == 0
    assert heavy(modules, "asyncio", "aiohttp", "google", "pkg.config") == set()
