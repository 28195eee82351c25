import asyncio
import gc

import pytest

from pkg.aio.idle_gc import IdleCollector
from pkg.testing.wait import eventually


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def collector(clock: FakeClock):
    collector = IdleCollector(quiet=0.5, shortest=5.0, longest=60.0, clock=clock)
    collector.install()
    yield collector
    collector.uninstall()


def _make_old_garbage() -> None:
    """Cycles that survive young collections, so the old generation has something pending."""
    keep = []
    for _ in range(3):
        for _ in range(2000):
            node: dict[str, object] = {}
            node["self"] = node
            keep.append(node)
        gc.collect(1)
    keep.clear()


def test_install_takes_the_full_collection_over_and_uninstall_gives_it_back():
    before = gc.get_threshold()
    collector = IdleCollector()
    collector.install()
    try:
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert old > 1_000_000
        assert gc.get_freeze_count() > 0
    finally:
        collector.uninstall()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_not_due_while_the_server_is_busy(clock, collector):
    _make_old_garbage()
    clock.now += 10
    collector.busy()
    clock.now += 0.2
    assert not collector.due()
    clock.now += 0.4
    assert collector.due()


def test_not_due_twice_within_the_shortest_interval(clock, collector):
    _make_old_garbage()
    clock.now += 10
    collector.collect()
    _make_old_garbage()
    clock.now += 1
    assert not collector.due()
    clock.now += 5
    assert collector.due()


def test_due_after_the_longest_interval_even_when_busy(clock, collector):
    _make_old_garbage()
    clock.now += 61
    collector.busy()
    assert collector.due()


def test_not_due_when_nothing_reached_the_old_generation(clock, collector):
    gc.collect()
    clock.now += 120
    assert gc.get_count()[2] == 0
    assert not collector.due()


def test_collect_frees_the_cycles_and_counts_its_pause(collector):
    _make_old_garbage()
    assert collector.collect() >= 6000
    assert collector.collections == 1
    assert collector.pause_seconds > 0


def test_bad_intervals_are_refused():
    with pytest.raises(ValueError, match="shortest <= longest"):
        IdleCollector(shortest=10, longest=5)
    with pytest.raises(ValueError, match="0 < quiet"):
        IdleCollector(quiet=0)


def test_run_collects_when_quiet_and_uninstalls_when_cancelled():
    saved = gc.get_threshold()
    collector = IdleCollector(quiet=0.02, shortest=0.02, longest=1.0)

    async def main() -> None:
        task = asyncio.create_task(collector.run())
        await asyncio.sleep(0.05)
        _make_old_garbage()
        await eventually(lambda: collector.collections > 0, timeout=5, what="a full collection")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert collector.collections >= 1
    assert gc.get_threshold() == saved


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_survivors_are_frozen_and_every_thaw_every_th_collection_finds_their_cycles(clock):
    import weakref

    collector = IdleCollector(thaw_every=3, clock=clock)
    collector.install()
    try:
        node = _Node()
        alive = weakref.ref(node)
        collector.collect()  # the first: node survives it, and is frozen
        del node
        collector.collect()  # the second looks only at what came since
        assert alive() is not None
        collector.collect()  # the third thaws first
        assert alive() is None
    finally:
        collector.uninstall()
