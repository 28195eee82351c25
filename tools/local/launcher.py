"""Start, watch and stop the local mesh's processes; remember them in the run folder.

Every process runs in its own session (so a terminal's Ctrl-C does not reach it and
its children, such as an agent's Envoy, share its process group). `state.json` in the
run folder lists what was started, with each process's start time so a recycled pid is
never mistaken for ours; `down` reads it and signals whole process groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable

from tools.local.topology import ROOT, ProcessSpec, Topology, base_env

log = logging.getLogger("mesh")


class LaunchError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Started:
    name: str
    pid: int
    start_time: int  # clock ticks since boot, from /proc/<pid>/stat
    stage: int
    log: str

    def alive(self) -> bool:
        return _start_time(self.pid) == self.start_time


def read_state(run_dir: pathlib.Path) -> list[Started]:
    try:
        data = json.loads((run_dir / "state.json").read_text())
    except FileNotFoundError:
        return []
    return [Started(**item) for item in data["processes"]]


def _write_state(run_dir: pathlib.Path, started: Iterable[Started]) -> None:
    path = run_dir / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"processes": [dataclasses.asdict(s) for s in started]}, indent=2))
    tmp.replace(path)


def start(topology: Topology, spec: ProcessSpec) -> Started:
    topology.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = topology.log_dir / f"{spec.name}.log"
    env = base_env()
    env.update(dict(spec.env))
    with open(log_path, "ab") as out:
        process = subprocess.Popen(
            spec.argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Started(spec.name, process.pid, _start_time(process.pid) or 0, spec.stage, str(log_path))


async def wait_ready(
    specs: Iterable[ProcessSpec], started: dict[str, Started], timeout: float
) -> None:
    """Wait until every spec's readiness URL answers 200, or say which did not and why."""

    async def one(spec: ProcessSpec) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not started[spec.name].alive():
                raise LaunchError(
                    f"{spec.name} exited during start-up; see {started[spec.name].log}"
                )
            ok, last = await asyncio.to_thread(_probe, spec.ready_url)
            if ok:
                return
            await asyncio.sleep(0.1)
        raise LaunchError(
            f"{spec.name} not ready after {timeout:.0f}s ({spec.ready_url}: {last}); see {started[spec.name].log}"
        )

    async with asyncio.TaskGroup() as tasks:
        for spec in specs:
            tasks.create_task(one(spec))


def stop(run_dir: pathlib.Path, *, grace: float = 10.0) -> list[str]:
    """Stop everything the state file lists, last stage first; returns what had to be killed.

    Returns only when no process of any listed group is left: a group leader can be gone while
    its children (an agent's Envoy) are still on their way out.
    """
    started = read_state(run_dir)
    killed: list[str] = []
    for stage in sorted({s.stage for s in started}, reverse=True):
        group = [s for s in started if s.stage == stage and s.alive()]
        for proc in group:
            _signal_group(proc.pid, signal.SIGTERM)
        _wait_gone(group, grace)
        for proc in group:
            # The whole group: an agent's Envoy goes with it even if the agent is gone.
            if _group_members(proc.pid) and _signal_group(proc.pid, signal.SIGKILL):
                killed.append(proc.name)
        if not _wait_gone(group, _KILL_WAIT):
            log.warning("still running after SIGKILL: %s", ", ".join(p.name for p in group))
    with contextlib.suppress(FileNotFoundError):
        (run_dir / "state.json").unlink()
    return killed


_KILL_WAIT = 5.0  # seconds for SIGKILLed processes to leave the process table


def _wait_gone(group: list[Started], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(p.alive() or _group_members(p.pid) for p in group):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is `pgid`."""
    members = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def record(run_dir: pathlib.Path, started: Iterable[Started]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_state(run_dir, started)


def _signal_group(pid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pid, sig)  # each process leads its own session and group
        return True
    except ProcessLookupError:
        return False


def _probe(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code}: {error.read(200).decode(errors='replace').strip()}"
    except (OSError, urllib.error.URLError) as error:
        return False, str(getattr(error, "reason", error))


def _start_time(pid: int) -> int | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is not running
        return None
    return int(fields[19])
