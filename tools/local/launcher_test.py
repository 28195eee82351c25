import os
import pathlib
import sys
import time

from tools.local import launcher
from tools.local.topology import ProcessSpec, Topology

# A process that starts a grandchild, as pilot-agent starts Envoy, then waits.
PARENT = "import subprocess, sys, time; p = subprocess.Popen(['sleep', '120']); print(p.pid, flush=True); time.sleep(120)"


def _grandchild(log: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = pathlib.Path(log).read_text().strip()
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError("the process did not start its child")


def _running(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_stop_takes_down_each_process_group_and_forgets_it(tmp_path):
    topology = Topology(run_dir=tmp_path)
    specs = [
        ProcessSpec(f"p{stage}", (sys.executable, "-c", PARENT), "http://unused", stage=stage)
        for stage in (0, 1)
    ]
    started = [launcher.start(topology.log_dir, spec) for spec in specs]
    launcher.record(tmp_path, started)
    grandchildren = [_grandchild(s.log) for s in started]
    assert all(s.alive() for s in started)
    assert all(_running(pid) for pid in grandchildren)
    assert [s.name for s in launcher.read_state(tmp_path)] == ["p0", "p1"]

    launcher.stop(tmp_path, grace=5)

    assert not any(s.alive() for s in started)
    assert not any(_running(pid) for pid in grandchildren)
    assert launcher.read_state(tmp_path) == []


def test_a_recycled_pid_is_not_mistaken_for_ours(tmp_path):
    own = launcher.Started("me", os.getpid(), start_time=1, stage=0, log="")
    assert not own.alive()  # same pid, different start time: not the process we started
