import asyncio
import pathlib

from tools.bench import mixer_inprocess, mixer_workload


def test_times_the_request_path_of_a_config_set(tmp_path: pathlib.Path) -> None:
    figures = asyncio.run(mixer_inprocess.measure(2, tmp_path, report_sets=4, calls=5, repeats=2))
    assert figures["check_answer"] == mixer_workload.PERMISSION_DENIED
    timed = [name for name in figures if name.endswith("_us")]
    assert len(timed) == 7  # the three "what if" measures are now Mixer itself
    for name in timed:
        assert figures[name] > 0, name
    assert figures["report_us_per_attribute_set"] == round(figures["report_us"] / 4, 1)
    # The Reports went through the real access log adapter.
    assert '"destinationApp":"svc-1"' in (tmp_path / "access.log").read_text()


def test_best_us_interleaves_runs_and_keeps_the_fastest() -> None:
    order: list[str] = []
    delays = {"slow_first": iter([0.0, 0.02, 0.0, 0.0]), "steady": iter([0.0, 0.0, 0.0, 0.0])}

    def call(name: str):
        async def run() -> None:
            order.append(name)
            await asyncio.sleep(next(delays[name]))

        return run

    drained = 0

    async def between() -> None:
        nonlocal drained
        drained += 1

    best = asyncio.run(
        mixer_inprocess.best_us(
            {"slow_first": (call("slow_first"), 1), "steady": (call("steady"), 1)},
            repeats=3,
            between=between,
        )
    )
    # One untimed warm-up each, then the measures take turns.
    assert order == ["slow_first", "steady"] + ["slow_first", "steady"] * 3
    assert drained == 6
    assert set(best) == {"slow_first", "steady"}
    assert best["slow_first"] < 10_000  # a run that slept 0 s, not the 20 ms one
