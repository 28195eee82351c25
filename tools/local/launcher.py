"""Start, watch and stop the local mesh's processes; remember them in the run folder.

Every process runs in its own session (so a terminal's Ctrl-C does not reach it and
its children, such as an agent's Envoy, share its process group). `state.json` in the
run folder lists what was started, with each process's start time so a recycled pid is
never mistaken for ours, and how often it was restarted; `specs.json` says how each was
started, so the watchdog (watchdog.py) can start it again. `down` reads the state and
signals whole process groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator

from tools.local.topology import ROOT, ProcessSpec, base_env

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
    restarts: int = 0  # times the watchdog started it again after it died

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


@contextlib.contextmanager
def state_lock(run_dir: pathlib.Path) -> Iterator[None]:
    """Held around a read-modify-write of the state: the watchdog and `Mesh.restart` both
    record restarts, and neither may undo the other's."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "state.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record_specs(run_dir: pathlib.Path, specs: Iterable[ProcessSpec]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "specs.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([dataclasses.asdict(s) for s in specs], indent=2))
    tmp.replace(path)


def read_specs(run_dir: pathlib.Path) -> list[ProcessSpec]:
    try:
        data = json.loads((run_dir / "specs.json").read_text())
    except FileNotFoundError:
        return []
    return [
        ProcessSpec(
            name=item["name"],
            argv=tuple(item["argv"]),
            ready_url=item["ready_url"],
            stage=item["stage"],
            env=tuple((k, v) for k, v in item["env"]),
        )
        for item in data
    ]


def start(log_dir: pathlib.Path, spec: ProcessSpec) -> Started:
    """Start `spec` in its own session, its output appended to `<log_dir>/<name>.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.name}.log"
    env = base_env()
    env.update(dict(spec.env))
    if shutil.which(spec.argv[0]) is None:
        raise LaunchError(f"{spec.name}: cannot run {spec.argv[0]}: not found (run make setup)")
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
    specs: Iterable[ProcessSpec],
    started: dict[str, Started],
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Wait until every spec's readiness URL answers 200, or say which did not and why.

    `progress` hears, while some are slow (after SLOW_AFTER seconds, then every SLOW_EVERY),
    which processes are still not ready and what their readiness URL last said."""
    specs = list(specs)
    waiting: dict[str, str] = {spec.name: "no answer yet" for spec in specs}
    began = time.monotonic()
    all_ready = asyncio.Event()

    async def report() -> None:
        pause = SLOW_AFTER
        while True:
            try:
                async with asyncio.timeout(pause):
                    await all_ready.wait()
                return
            except TimeoutError:
                pause = SLOW_EVERY
            shown = [f"{name} ({_brief(last)})" for name, last in list(waiting.items())[:3]]
            more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
            if progress is not None:
                progress(
                    f"still waiting ({time.monotonic() - began:.0f}s of {timeout:.0f}s) for "
                    + ", ".join(shown)
                    + more
                )

    async def one(spec: ProcessSpec) -> None:
        deadline = began + timeout
        last = "no answer yet"
        log_path = started[spec.name].log
        while time.monotonic() < deadline:
            if not started[spec.name].alive():
                raise LaunchError(
                    f"{spec.name} exited during start-up; its log is {log_path}" + _tail(log_path)
                )
            ok, last = await asyncio.to_thread(_probe, spec.ready_url)
            if ok:
                del waiting[spec.name]
                if not waiting:
                    all_ready.set()
                return
            waiting[spec.name] = last
            await asyncio.sleep(0.1)
        raise LaunchError(
            f"{spec.name} not ready after {timeout:.0f}s ({spec.ready_url}: {last}); "
            f"its log is {log_path}" + _tail(log_path)
        )

    if not specs:
        return
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(report(), name="readiness-report")
            for spec in specs:
                tasks.create_task(one(spec), name=f"ready {spec.name}")
    except* LaunchError as failed:
        # The first process that failed, by its own message (not an exception group).
        raise failed.exceptions[0] from None
    if progress is not None:
        progress(f"ready in {time.monotonic() - began:.1f}s")


def _brief(answer: str, limit: int = 70) -> str:
    return answer if len(answer) <= limit else answer[: limit - 1] + "…"


SLOW_AFTER = 3.0  # seconds before a process counts as slow to start, and is reported
SLOW_EVERY = 5.0


def _tail(path: str, lines: int = 8) -> str:
    """The last lines of a log, indented, to show under an error."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    last = [line for line in text.splitlines() if line.strip()][-lines:]
    return "".join(f"\n    {line}" for line in last)


def stop(run_dir: pathlib.Path, *, grace: float = 10.0) -> list[str]:
    """Stop everything the state file lists, last stage first; returns what had to be killed.

    The state is read again at each stage: the watchdog (the last stage) may have restarted
    something just before it stopped. Returns only when no process of any listed group is
    left: a group leader can be gone while its children (an agent's Envoy) are on their way out.
    """
    killed: list[str] = []
    for stage in sorted({s.stage for s in read_state(run_dir)}, reverse=True):
        group = [s for s in read_state(run_dir) if s.stage == stage and s.alive()]
        for proc in group:
            _signal_group(proc.pid, signal.SIGTERM)
        _wait_gone(group, grace)
        for proc in group:
            # The whole group: an agent's Envoy goes with it even if the agent is gone.
            if _group_members(proc.pid) and _signal_group(proc.pid, signal.SIGKILL):
                killed.append(proc.name)
        if not _wait_gone(group, _KILL_WAIT):
            log.warning("still running after SIGKILL: %s", ", ".join(p.name for p in group))
    for name in ("state.json", "specs.json"):
        with contextlib.suppress(FileNotFoundError):
            (run_dir / name).unlink()
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
