"""Runs one Envoy: starts it, restarts it when it dies, drains and stops it on request.

The supervisor's `run()` is the only owner of the Envoy process. Envoy gets its own process
group, so a Ctrl-C at a terminal reaches the agent alone and the agent drains Envoy properly;
and the kernel kills Envoy if the agent dies without a chance to clean up (PR_SET_PDEATHSIG),
so an agent never leaves an orphan Envoy holding the pod's ports.

The death signal is set by util-linux's `setpriv --pdeathsig`, which then execs Envoy (same
pid). Setting it from a `preexec_fn` instead makes Python fork() rather than vfork(), and a
fork() runs the fork handlers of any gRPC loaded in the process: seen aborting the child
(SIGABRT, "epoll_wait error: Bad file descriptor"). preexec_fn is only the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import math
import os
import pathlib
import shutil
import signal
import time
from collections.abc import Callable

from pkg.aio.backoff import Backoff
from proxy.agent import admin as envoy_admin
from proxy.agent.options import AgentOptions

log = logging.getLogger("pilot-agent.envoy")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_SETPRIV = shutil.which("setpriv")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnvoyOptions:
    binary: pathlib.Path
    config_path: pathlib.Path
    log_path: pathlib.Path
    admin_url: str
    concurrency: int = 1
    log_level: str = "info"
    drain_duration: float = 5.0  # the longest a stop waits for connections to close
    # Restart back-off: doubles from `min_backoff` to `max_backoff`; an Envoy that stayed up
    # `stable_after` seconds starts the sequence over.
    min_backoff: float = 0.2
    max_backoff: float = 10.0
    stable_after: float = 10.0
    terminate_timeout: float = 5.0  # SIGTERM to SIGKILL
    # Listener ports whose connections do not hold a drain (health probes, stats scrapes).
    ignore_ports: tuple[int, ...] = ()

    @classmethod
    def for_agent(cls, options: AgentOptions) -> EnvoyOptions:
        return cls(
            binary=options.envoy_binary,
            config_path=options.bootstrap_path,
            log_path=options.envoy_log_path,
            admin_url=options.admin_url,
            concurrency=options.concurrency,
            drain_duration=options.drain_duration,
            ignore_ports=(options.envoy_status_port, options.envoy_prometheus_port),
        )


def envoy_command(options: EnvoyOptions) -> list[str]:
    return [
        str(options.binary),
        "-c",
        str(options.config_path),
        # Hot restart's shared memory would tie Envoys on one machine together, and an Envoy
        # started with it died with its Python parent; the agent restarts Envoy itself.
        # (--parent-shutdown-time-s and --use-dynamic-base-id only matter to hot restart.)
        "--disable-hot-restart",
        "--concurrency",
        str(options.concurrency),
        "--log-level",
        options.log_level,
        # How long `/drain_listeners?graceful` keeps listeners open while asking clients to
        # close; Istio's `immediate` asks every connection at once rather than gradually.
        "--drain-time-s",
        str(math.ceil(options.drain_duration)),
        "--drain-strategy",
        "immediate",
    ]


def _launch(command: list[str]) -> tuple[list[str], Callable[[], None] | None]:
    """The command that starts Envoy with SIGKILL as its parent-death signal, and the
    preexec_fn that sets it where setpriv is missing."""
    if _SETPRIV is not None:
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *command], None
    parent = os.getpid()
    return command, lambda: _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """Runs in the child between fork and exec: Envoy gets SIGKILL when the agent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(127)
    if os.getppid() != parent:  # the agent died before prctl took effect
        os._exit(127)


class EnvoySupervisor:
    """Keeps one Envoy running until `stop()`; `run()` must be running for that."""

    def __init__(self, *, options: EnvoyOptions) -> None:
        self._options = options
        self._process: asyncio.subprocess.Process | None = None
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self.starts = 0  # how many Envoys were started, restarts included

    @property
    def pid(self) -> int | None:
        """The running Envoy's process id, None between restarts."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def run(self) -> None:
        """Starts Envoy and restarts it when it exits, until `stop()`; then drains it."""
        backoff = Backoff(self._options.min_backoff, self._options.max_backoff)
        try:
            while not self._stop.is_set():
                process = await self._start()
                started = time.monotonic()
                if await self._wait_exit_or_stop(process):
                    await self._shutdown(process)
                    return
                uptime = time.monotonic() - started
                if uptime >= self._options.stable_after:
                    backoff.reset()
                delay = backoff.next_delay()
                log.warning(
                    "envoy (pid %d) exited with %s after %.1fs; restarting in %.3gs (see %s)",
                    process.pid,
                    _describe_exit(process.returncode),
                    uptime,
                    delay,
                    self._options.log_path,
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
        finally:
            # Cancelled or failed: never leave Envoy behind.
            if self._process is not None and self._process.returncode is None:
                self._process.kill()
                await self._process.wait()
            self._stopped.set()

    async def stop(self) -> None:
        """Drains and stops Envoy, and waits until `run()` has returned."""
        self._stop.set()
        await self._stopped.wait()

    async def _start(self) -> asyncio.subprocess.Process:
        self._options.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = envoy_command(self._options)
        if not os.access(self._options.binary, os.X_OK):
            # Permanent: fail the agent rather than restart forever (setpriv would exit 127).
            raise FileNotFoundError(f"envoy binary {self._options.binary} is not executable")
        launch, preexec_fn = _launch(command)
        with await asyncio.to_thread(open, self._options.log_path, "ab") as envoy_log:
            self._process = await asyncio.create_subprocess_exec(
                *launch,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=envoy_log,
                stderr=asyncio.subprocess.STDOUT,
                process_group=0,
                preexec_fn=preexec_fn,
            )
        self.starts += 1
        log.info("started envoy (pid %d): %s", self._process.pid, " ".join(command))
        return self._process

    async def _wait_exit_or_stop(self, process: asyncio.subprocess.Process) -> bool:
        """True when asked to stop, False when Envoy exited on its own."""
        async with asyncio.TaskGroup() as tasks:
            exited = tasks.create_task(process.wait(), name="envoy-wait")
            stop = tasks.create_task(self._stop.wait(), name="envoy-stop-wait")
            await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
            stopping = stop.done()
            exited.cancel()
            stop.cancel()
        return stopping

    async def _shutdown(self, process: asyncio.subprocess.Process) -> None:
        """Graceful drain (bounded), then SIGTERM, then SIGKILL."""
        await self._drain(process)
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(self._options.terminate_timeout):
                    await process.wait()
            except TimeoutError:
                log.warning("envoy (pid %d) ignored SIGTERM; killing it", process.pid)
                process.kill()
                await process.wait()
        log.info("envoy (pid %d) stopped: %s", process.pid, _describe_exit(process.returncode))

    async def _drain(self, process: asyncio.subprocess.Process) -> None:
        """Asks Envoy to drain, then waits until no connection is left or time is up."""
        if self._options.drain_duration <= 0 or process.returncode is not None:
            return
        async with envoy_admin.AdminClient(self._options.admin_url, timeout=1.0) as client:
            try:
                await client.drain_listeners()
                log.info(
                    "draining envoy (pid %d) for up to %gs",
                    process.pid,
                    self._options.drain_duration,
                )
                async with asyncio.timeout(self._options.drain_duration):
                    while process.returncode is None:
                        left = await client.active_connections(
                            ignore_ports=self._options.ignore_ports
                        )
                        if left == 0:
                            return
                        await asyncio.sleep(0.1)
            except envoy_admin.AdminUnavailable as error:
                log.info("not draining envoy (pid %d): %s", process.pid, error)
            except TimeoutError:
                log.info("drain of envoy (pid %d) timed out with connections open", process.pid)


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "no exit status"
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"
