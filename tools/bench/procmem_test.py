import os
import pathlib
import subprocess
import sys

import pytest

from tools.bench import procmem

ROLLUP = """5576d7dee000-7ffdd4627000 ---p 00000000 00:00 0                          [rollup]
Rss:               75000 kB
Pss:               22000 kB
Shared_Clean:      59000 kB
Private_Clean:      1000 kB
Private_Dirty:     15000 kB
Swap:                  0 kB
"""
STATUS = """Name:\tenvoy
State:\tS (sleeping)
VmHWM:\t   80000 kB
VmRSS:\t   75100 kB
Threads:\t12
"""


def test_parse_kib_fields_skips_other_lines() -> None:
    fields = procmem.parse_kib_fields(STATUS)
    assert fields == {"VmHWM": 80000, "VmRSS": 75100}


def test_memory_from_rollup_and_status() -> None:
    memory = procmem.memory_from(ROLLUP, STATUS)
    assert memory == procmem.Memory(
        rss_kib=75100, pss_kib=22000, private_kib=16000, vm_hwm_kib=80000
    )
    assert memory.to_json() == {
        "rss_mib": 73.3,
        "pss_mib": 21.5,
        "private_mib": 15.6,
        "peak_rss_mib": 78.1,
    }


def test_read_memory_of_this_process() -> None:
    memory = procmem.read_memory(os.getpid())
    assert 0 < memory.private_kib <= memory.rss_kib
    assert 0 < memory.pss_kib <= memory.rss_kib


def test_read_memory_of_a_gone_process_raises() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    with pytest.raises((FileNotFoundError, ProcessLookupError)):
        procmem.read_memory(process.pid)


def test_children_and_envoy_lookup_by_command_line(tmp_path: pathlib.Path) -> None:
    # A stand-in "envoy": python under a link named envoy, its argv ending in `-c <bootstrap>`,
    # started by a parent python that waits for it, as an agent waits for its Envoy.
    fake = tmp_path / "envoy"
    fake.symlink_to(sys.executable)
    bootstrap = tmp_path / "pods" / "p" / "envoy-rev.json"
    argv = [str(fake), "-c", "import time; time.sleep(30)", "-c", str(bootstrap)]
    script = (
        f"import subprocess, sys; p = subprocess.Popen({argv!r}); "
        "print(p.pid, flush=True); sys.stdin.read(); p.kill(); p.wait()"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert procmem.parent_of(child) == parent.pid
        assert procmem.children(parent.pid) == [child]
        assert procmem.cmdline(child)[-2:] == ["-c", str(bootstrap)]
        assert procmem.envoy_of(parent.pid, bootstrap) == child
        assert procmem.envoy_of(parent.pid, tmp_path / "other.json") is None
    finally:
        parent.communicate("", timeout=10)
