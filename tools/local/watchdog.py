"""The local mesh's watchdog: a process that died is started again, with a back-off.

What a kubelet does for a pod's containers (the local kubelet does it for Bookinfo's pods),
the watchdog does for the processes the launcher started: the config store, Pilot, the CA,
the node agent, mixs, the kubelet itself, and on the local platform each pod's agent. It
reads the run folder's `state.json` (what runs) and `specs.json` (how each was started)
every POLL seconds; a process that is gone starts again after 1 s, doubling to 30 s while it
keeps dying, reset by a run of `stable_after` seconds, as Kubernetes' CrashLoopBackOff.
`state.json` counts the restarts, which `make status` shows.

`Mesh.up` starts the watchdog last, as the last stage, so `mesh down` stops it before the
processes it would otherwise restart. It stops at SIGTERM between two looks, never between
starting a process and recording it.

Why not supervisord (PyPI `supervisor`): it backs off only while a program is still starting
(one that ran and then died is respawned at once, every time), it keeps no restart count,
and it knows neither the launcher's stages nor readiness URLs: it would sit beside the
launcher, not replace it, for less than these lines do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import signal
import sys
import time

from pkg.aio.backoff import Backoff
from tools.local import launcher
from tools.local.topology import PYTHON, ProcessSpec

log = logging.getLogger("watchdog")

NAME = "watchdog"


@dataclasses.dataclass(frozen=True)
class WatchdogOptions:
    poll: float = 0.5  # seconds between two looks at the state
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    stable_after: float = 10.0  # a run this long resets the back-off


def spec(run_dir: pathlib.Path, stage: int) -> ProcessSpec:
    """The watchdog as a process of the mesh: `stage` must be after every other stage."""
    argv = (PYTHON, "-m", "tools.local.watchdog", "--run-dir", str(run_dir))
    return ProcessSpec(NAME, argv, ready_url="", stage=stage)


@dataclasses.dataclass
class _Watched:
    backoff: Backoff
    pid: int = 0  # the process last seen alive under this name
    up_since: float = 0.0
    due: float | None = None  # when it starts again, while it is gone


class Watchdog:
    def __init__(self, run_dir: pathlib.Path, options: WatchdogOptions | None = None) -> None:
        self._run_dir = run_dir
        self._options = options or WatchdogOptions()
        self._watched: dict[str, _Watched] = {}
        self._children: set[int] = set()  # what it started, to collect when they exit

    def tick(self, now: float) -> list[str]:
        """One look at the state: notes who is gone, starts those whose back-off is over;
        returns the names it started."""
        self._reap_children()
        specs = {s.name: s for s in launcher.read_specs(self._run_dir)}
        restarted: list[str] = []
        with launcher.state_lock(self._run_dir):
            state = launcher.read_state(self._run_dir)
            for index, proc in enumerate(state):
                if proc.name == NAME or proc.name not in specs:
                    continue
                started = self._look_at(proc, specs[proc.name], now)
                if started is not None:
                    state[index] = started
                    restarted.append(proc.name)
            if restarted:
                launcher.record(self._run_dir, state)
        return restarted

    def _look_at(
        self, proc: launcher.Started, spec: ProcessSpec, now: float
    ) -> launcher.Started | None:
        watched = self._watched.get(proc.name)
        if watched is None:
            watched = self._watched[proc.name] = _Watched(
                Backoff(self._options.backoff_initial, self._options.backoff_max)
            )
        if proc.alive():
            if watched.pid != proc.pid:  # first seen, or started again by someone else
                watched.pid, watched.up_since, watched.due = proc.pid, now, None
            elif now - watched.up_since >= self._options.stable_after:
                watched.backoff.reset()
            return None
        if watched.due is None:
            delay = watched.backoff.next_delay()
            watched.due = now + delay
            log.warning("%s (pid %d) is gone; starting it again in %gs", proc.name, proc.pid, delay)
            return None
        if now < watched.due:
            return None
        watched.due = None
        try:
            started = launcher.start(pathlib.Path(proc.log).parent, spec)
        except (launcher.LaunchError, OSError) as error:
            watched.due = now + watched.backoff.next_delay()
            log.error("%s did not start: %s", proc.name, error)
            return None
        watched.pid, watched.up_since = started.pid, now
        self._children.add(started.pid)
        log.info("%s started again (pid %d, restart %d)", proc.name, started.pid, proc.restarts + 1)
        return dataclasses.replace(started, stage=proc.stage, restarts=proc.restarts + 1)

    def _reap_children(self) -> None:
        """Collect the exit of each process it started that has died: else each stays a
        zombie (which `alive()` rightly ignores) until the watchdog exits. Only its own: the
        watchdog may run inside another program (a test) with children of its own."""
        for pid in list(self._children):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    self._children.discard(pid)
            except ChildProcessError:
                self._children.discard(pid)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.tick(time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._options.poll):
                    await stop.wait()


async def _serve(run_dir: pathlib.Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("watching the processes of %s", run_dir)
    await Watchdog(run_dir).run(stop)
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="watchdog", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=pathlib.Path, required=True, help="the mesh's state")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s watchdog: %(message)s")
    asyncio.run(_serve(args.run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
