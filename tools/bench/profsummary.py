"""A cProfile file summed up: the top functions, and the time of each part of a program.

cProfile measures wall time on the profiled thread only (here the event loop's). A
coroutine counts as called each time it is resumed, and its cumulative time is the time
it ran, not the time it waited. Built-in functions (dict.get, str.join, a protobuf
method) have no file; their own time is given to the area of whoever called them, in
the proportions cProfile recorded per caller, so "expression evaluation" includes the
dict lookups the expressions made. Time in `epoll.poll` is the loop waiting for work.
"""

from __future__ import annotations

import pathlib
import pstats
from collections.abc import Sequence
from typing import Any

Key = tuple[str, int, str]  # (file, line, function), as pstats keys functions

# Area of a function: the first whose patterns appear in its file (or, for a built-in, its
# name). Order matters: a built-in epoll wait is idle time, not asyncio's.
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle (epoll wait)", ("select.epoll",)),
    # The own time of Context.run is C code that event loop callbacks run without a
    # Python-level call cProfile could see: grpc.aio's Cython server coroutines (with the
    # protobuf parsing and serializing they call) and the C Task steps of asyncio.
    (
        "C code run from loop callbacks (gRPC Cython, protobuf, task steps)",
        ("_contextvars.Context",),
    ),
    (
        "start-up (imports, config loading)",
        ("<frozen", "marshal.loads", "builtins.compile", "__build_class__", "/yaml/", "_ssl."),
    ),
    ("gRPC", ("/grpc/", "grpc._cython", "cygrpc")),
    ("protobuf", ("/google/protobuf/", "google._upb")),
    ("attribute decoding, bags (mixer/attribute)", ("mixer/attribute/",)),
    ("expression evaluation (pkg/lang)", ("pkg/lang/",)),
    ("rule matching, dispatch (mixer/runtime)", ("mixer/runtime/",)),
    ("adapters (mixer/adapters, mixer/adapter)", ("mixer/adapters/", "mixer/adapter/")),
    ("templates (mixer/template)", ("mixer/template/",)),
    ("request handling, type check, response (mixer/server)", ("mixer/server/",)),
    ("logging", ("/logging/",)),
    ("asyncio (Python)", ("/asyncio/", "/selectors.py")),
)
OTHER = "other"
BUILTIN = "~"  # pstats' file name for built-in functions


def load(path: pathlib.Path) -> pstats.Stats:
    return pstats.Stats(str(path))


def label(key: Key, root: pathlib.Path | None = None) -> str:
    """`file:line(function)` with the file shortened; a built-in as cProfile names it."""
    file, line, function = key
    if file == BUILTIN:
        return function
    return f"{shorten(file, root)}:{line}({function})"


def shorten(file: str, root: pathlib.Path | None = None) -> str:
    if root is not None:
        prefix = str(root).rstrip("/") + "/"
        if file.startswith(prefix) and "/site-packages/" not in file:
            return file[len(prefix) :]
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in file:
            rest = file.split(marker, 1)[1]
            return rest if marker == "/site-packages/" else rest.split("/", 1)[-1]
    return file


def top(
    stats: pstats.Stats, by: str, count: int = 15, root: pathlib.Path | None = None
) -> list[dict[str, Any]]:
    """The `count` functions with the most `by` time: "cumulative" or "total" (own time)."""
    index = {"cumulative": 3, "total": 2}[by]
    entries = sorted(stats.stats.items(), key=lambda item: item[1][index], reverse=True)  # type: ignore[attr-defined]
    rows = []
    for key, (_, calls, own, cumulative, _) in entries[:count]:
        rows.append(
            {
                "function": label(key, root),
                "calls": calls,
                "own_s": round(own, 3),
                "cumulative_s": round(cumulative, 3),
                "cumulative_per_call_us": round(cumulative / calls * 1e6, 1) if calls else None,
            }
        )
    return rows


def area_of(key: Key) -> str | None:
    """The area of a function by its file or built-in name; None for an unplaced built-in."""
    file, _, function = key
    where = function if file == BUILTIN else file
    for area, patterns in AREAS:
        if any(p in where for p in patterns):
            return area
    return None if file == BUILTIN else OTHER


def areas(stats: pstats.Stats) -> dict[str, float]:
    """Own time per area in seconds, largest first; built-ins follow their callers."""
    table: dict[Key, tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}

    def place(key: Key, seconds: float, depth: int = 0) -> None:
        area = area_of(key)
        if area is not None or depth > 5:
            totals[area or OTHER] = totals.get(area or OTHER, 0.0) + seconds
            return
        callers = table.get(key, (0, 0, 0, 0, {}))[4]
        known = sum(c[2] for c in callers.values())
        if not callers or known <= 0:
            totals[OTHER] = totals.get(OTHER, 0.0) + seconds
            return
        for caller, caller_stats in callers.items():
            place(caller, seconds * caller_stats[2] / known, depth + 1)

    for key, (_, _, own, _, _) in table.items():
        place(key, own)
    return dict(sorted(totals.items(), key=lambda item: item[1], reverse=True))


def total_seconds(stats: pstats.Stats) -> float:
    return sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]


def find(stats: pstats.Stats, suffixes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Calls and cumulative time of functions named by `file-suffix:function` strings."""
    found: dict[str, dict[str, Any]] = {}
    for wanted in suffixes:
        file_suffix, _, function = wanted.rpartition(":")
        for (file, _, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
            if name == function and file.endswith(file_suffix):
                found[wanted] = {
                    "calls": calls,
                    "own_s": round(own, 3),
                    "cumulative_s": round(cumulative, 3),
                    "cumulative_per_call_us": round(cumulative / calls * 1e6, 1) if calls else None,
                }
                break
    return found
