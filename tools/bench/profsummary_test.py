import cProfile
import dataclasses
import pathlib
from typing import Any

import pytest

from tools.bench import profsummary

ROOT = pathlib.Path("/work/main")


def busy(n: int) -> int:
    return sum(i * i for i in range(n))


def caller() -> int:
    values = {i: i for i in range(100)}
    return busy(20_000) + sum(values.get(i, 0) for i in range(2000))


def test_a_real_profile_summed_up(tmp_path: pathlib.Path) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(caller)
    path = tmp_path / "out.prof"
    profiler.dump_stats(str(path))
    stats = profsummary.load(path)

    by_cumulative = profsummary.top(stats, "cumulative", 5)
    assert len(by_cumulative) == 5
    assert by_cumulative[0]["function"].endswith("(caller)")
    assert [r["cumulative_s"] for r in by_cumulative] == sorted(
        (r["cumulative_s"] for r in by_cumulative), reverse=True
    )
    by_own = profsummary.top(stats, "total", 3)
    assert [r["own_s"] for r in by_own] == sorted((r["own_s"] for r in by_own), reverse=True)
    for row in by_cumulative:
        assert row["cumulative_s"] >= row["own_s"] >= 0

    found = profsummary.find(stats, ["profsummary_test.py:busy", "nowhere.py:absent"])
    assert set(found) == {"profsummary_test.py:busy"}
    assert found["profsummary_test.py:busy"]["calls"] == 1

    # Every second of own time lands in exactly one area.
    assert sum(profsummary.areas(stats).values()) == pytest.approx(profsummary.total_seconds(stats))


@dataclasses.dataclass
class FakeStats:
    """What pstats.Stats holds: key -> (primitive calls, calls, own, cumulative, callers)."""

    stats: dict[Any, Any]


def test_builtins_follow_their_callers_in_proportion() -> None:
    evaluate = ("/work/main/pkg/lang/compiler.py", 79, "evaluate")
    decode = ("/work/main/mixer/attribute/compressed.py", 105, "_decode_values")
    get = ("~", 0, "<method 'get' of 'dict' objects>")
    poll = ("~", 0, "<method 'poll' of 'select.epoll' objects>")
    stats = FakeStats(
        {
            evaluate: (10, 10, 1.0, 2.0, {}),
            decode: (5, 5, 0.5, 1.0, {}),
            get: (100, 100, 0.4, 0.4, {evaluate: (75, 75, 0.3, 0.3), decode: (25, 25, 0.1, 0.1)}),
            poll: (3, 3, 2.0, 2.0, {}),
        }
    )
    areas = profsummary.areas(stats)  # type: ignore[arg-type]
    assert areas["expression evaluation (pkg/lang)"] == pytest.approx(1.3)
    assert areas["attribute decoding, bags (mixer/attribute)"] == pytest.approx(0.6)
    assert areas["idle (epoll wait)"] == pytest.approx(2.0)
    assert next(iter(areas)) == "idle (epoll wait)"  # largest first


def test_an_unplaceable_builtin_is_other() -> None:
    orphan = ("~", 0, "<built-in method builtins.len>")
    stats = FakeStats({orphan: (1, 1, 0.2, 0.2, {})})
    assert profsummary.areas(stats) == {profsummary.OTHER: pytest.approx(0.2)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "area"),
    [
        (("~", 0, "<method 'run' of '_contextvars.Context' objects>"), "C code run from loop"),
        (("/x/lib/python3.11/asyncio/base_events.py", 1845, "_run_once"), "asyncio"),
        (("/x/site-packages/grpc/aio/_server.py", 1, "start"), "gRPC"),
        (("<frozen importlib._bootstrap>", 1, "_find_and_load"), "start-up"),
        (("/work/main/mixer/runtime/dispatcher.py", 105, "_matching"), "rule matching"),
        (("/work/main/mixer/adapters/list/listchecker.py", 67, "handle"), "adapters"),
        (("/x/site-packages/aiohttp/web.py", 1, "run"), profsummary.OTHER),
    ],
)
def test_area_of(key: profsummary.Key, area: str) -> None:
    found = profsummary.area_of(key)
    assert found is not None
    assert found.startswith(area)


def test_labels_shorten_files() -> None:
    assert profsummary.label(("~", 0, "<built-in method len>")) == "<built-in method len>"
    assert (
        profsummary.label(("/work/main/mixer/server/server.py", 183, "check"), ROOT)
        == "mixer/server/server.py:183(check)"
    )
    assert (
        profsummary.shorten("/work/main/.venv/lib/python3.11/site-packages/grpc/aio/_call.py", ROOT)
        == "grpc/aio/_call.py"
    )
    assert (
        profsummary.shorten("/root/.pyenv/versions/3.11.7/lib/python3.11/asyncio/events.py")
        == "asyncio/events.py"
    )
