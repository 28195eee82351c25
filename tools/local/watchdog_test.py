"""The watchdog against real processes: the clock of its back-off is given, the processes real."""

import os
import pathlib
import signal
import sys

import pytest

from pkg.testing.wait import poll
from tools.local import launcher, watchdog
from tools.local.topology import ProcessSpec

SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")
QUICK = watchdog.WatchdogOptions(backoff_initial=1.0, backoff_max=4.0, stable_after=10.0)


@pytest.fixture
def run_dir(tmp_path: pathlib.Path):
    yield tmp_path
    launcher.stop(tmp_path, grace=2)


def launch(run_dir: pathlib.Path, *specs: ProcessSpec) -> list[launcher.Started]:
    launcher.record_specs(run_dir, specs)
    started = [launcher.start(run_dir / "logs", spec) for spec in specs]
    launcher.record(run_dir, started)
    return started


def kill(proc: launcher.Started) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    poll(lambda: not proc.alive(), f"{proc.name} gone", timeout=10, interval=0.01)


def state(run_dir: pathlib.Path) -> dict[str, launcher.Started]:
    return {s.name: s for s in launcher.read_state(run_dir)}


def test_a_process_that_died_starts_again_after_the_back_off_and_is_counted(run_dir):
    (pilot,) = launch(run_dir, ProcessSpec("pilot", SLEEPER, "", stage=1))
    guard = watchdog.Watchdog(run_dir, QUICK)
    assert guard.tick(now=0.0) == []  # alive: nothing to do
    kill(pilot)

    assert guard.tick(now=1.0) == []  # gone: due at 2.0
    assert guard.tick(now=1.9) == []
    assert guard.tick(now=2.0) == ["pilot"]

    again = state(run_dir)["pilot"]
    assert again.alive()
    assert again.pid != pilot.pid
    assert (again.restarts, again.stage, again.log) == (1, 1, pilot.log)


def test_the_back_off_doubles_while_it_keeps_dying_and_resets_after_a_stable_run(run_dir):
    launch(run_dir, ProcessSpec("mixs", SLEEPER, "", stage=0))
    guard = watchdog.Watchdog(run_dir, QUICK)

    def dies_at(now: float) -> None:
        kill(state(run_dir)["mixs"])
        assert guard.tick(now) == []

    dies_at(0.0)
    assert guard.tick(now=1.0) == ["mixs"]  # 1 s
    dies_at(1.5)
    assert guard.tick(now=3.4) == []
    assert guard.tick(now=3.5) == ["mixs"]  # 2 s
    dies_at(4.0)
    assert guard.tick(now=8.0) == ["mixs"]  # 4 s, the maximum
    dies_at(8.5)
    assert guard.tick(now=12.4) == []
    assert guard.tick(now=12.5) == ["mixs"]  # still 4 s
    assert guard.tick(now=23.0) == []  # ran 10 s: stable, the back-off starts over
    dies_at(23.5)
    assert guard.tick(now=24.5) == ["mixs"]
    assert state(run_dir)["mixs"].restarts == 5


def test_one_started_again_by_someone_else_is_not_started_twice(run_dir):
    spec = ProcessSpec("istio-ca", SLEEPER, "", stage=0)
    (ca,) = launch(run_dir, spec)
    guard = watchdog.Watchdog(run_dir, QUICK)
    kill(ca)
    assert guard.tick(now=0.0) == []
    with launcher.state_lock(run_dir):  # as Mesh.restart does
        launcher.record(run_dir, [launcher.start(run_dir / "logs", spec)])
    assert guard.tick(now=5.0) == []
    assert state(run_dir)["istio-ca"].restarts == 0


def test_a_process_that_cannot_start_is_tried_again_later(run_dir):
    missing = ProcessSpec("gone", ("/nonexistent/binary",), "", stage=0)
    launcher.record_specs(run_dir, [missing])
    launcher.record(run_dir, [launcher.Started("gone", 1 << 22, 0, 0, str(run_dir / "gone.log"))])
    guard = watchdog.Watchdog(run_dir, QUICK)
    assert guard.tick(now=0.0) == []
    assert guard.tick(now=1.0) == []  # failed to start: logged, due again
    assert state(run_dir)["gone"].restarts == 0


def test_down_stops_the_watchdog_first_and_then_what_it_restarted(run_dir):
    (p0,) = launch(run_dir, ProcessSpec("p0", SLEEPER, "", stage=0))
    guard = launcher.start(run_dir / "logs", watchdog.spec(run_dir, stage=1))
    launcher.record(run_dir, [p0, guard])
    kill(p0)
    again = poll(
        lambda: (s := state(run_dir)["p0"]).restarts == 1 and s.alive() and s,
        "p0 started again by the watchdog process",
        timeout=20,
        interval=0.1,
    )

    launcher.stop(run_dir, grace=5)

    assert not again.alive()
    assert not guard.alive()
    assert launcher.read_state(run_dir) == []
    assert launcher.read_specs(run_dir) == []
    assert "p0 (pid" in pathlib.Path(guard.log).read_text()  # it said what it did
