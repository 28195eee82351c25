"""A pod runtime that runs each container as a process, in the pod's sandbox.

The sandbox (the CRI's pod sandbox) is what the pod's containers share: `LoopbackSandbox` is
nothing at all (every pod has its own 127.x address, so each binds the standard ports, and
everything runs as the kubelet's user; no traffic interception, which needs root), and
`netnssandbox.NetnsSandbox` is the pod's own network namespace. Each container is a process in
its own session (so it and its children, an agent's Envoy, stop together), its output
appended to the pod's log of it. Init containers run first, one at a time, each to
completion, and a failed one again after a back-off (the pod stays Init:Error, then
Init:CrashLoopBackOff) unless the restart policy is Never; then the other containers start,
each restarted by the pod's restart policy with a back-off, as Kubernetes' CrashLoopBackOff.

The pods' process groups are written to `<pod dir>/processes.json`, so a kubelet that starts
after one that died can find what that one left running and stop it (`reap`).
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
import termios
import time
from collections.abc import Sequence
from typing import Protocol

from tools.local.podruntime import (
    ContainerSpec,
    ContainerStatus,
    ExecError,
    ExecProcess,
    PodSpec,
    RestartPolicy,
    State,
)
from tools.local.topology import ROOT, base_env

log = logging.getLogger("kubelet.runtime")

_STATE_FILE = "processes.json"


class SandboxError(RuntimeError):
    """The pod's sandbox could not be made: why."""


class Sandbox(Protocol):
    async def create(self, pod: PodSpec) -> None:
        """Make what the pod's containers share; raises SandboxError."""
        ...

    def command(self, pod: PodSpec, container: ContainerSpec) -> list[str]:
        """The command line that runs the container inside the sandbox."""
        ...

    def exec_command(
        self, pod: PodSpec, argv: Sequence[str], user: int, group: int | None
    ) -> list[str]:
        """The command line that runs `argv` beside the pod's containers, as `user`."""
        ...

    async def remove(self, pod: PodSpec) -> None:
        """Remove the sandbox (its containers have stopped)."""
        ...


class LoopbackSandbox:
    """No sandbox: the pod's containers share the node's network (each pod its own address)."""

    async def create(self, pod: PodSpec) -> None:
        return None

    def command(self, pod: PodSpec, container: ContainerSpec) -> list[str]:
        return list(container.argv)

    def exec_command(
        self, pod: PodSpec, argv: Sequence[str], user: int, group: int | None
    ) -> list[str]:
        # Its containers run as the kubelet's user; a command run by hand may not be root's
        # even where the kubelet is root (unless the pod says so).
        if os.geteuid() != 0 or user == 0 or shutil.which("setpriv") is None:
            return list(argv)
        return setpriv(argv, user, group)

    async def remove(self, pod: PodSpec) -> None:
        return None


@dataclasses.dataclass
class _Container:
    spec: ContainerSpec
    status: ContainerStatus
    process: asyncio.subprocess.Process | None = None


@dataclasses.dataclass
class _Pod:
    spec: PodSpec
    containers: dict[str, _Container]
    supervisors: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)
    stopping: bool = False
    sandbox_ready: bool = False
    execs: set[asyncio.subprocess.Process] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True)
class ProcessRuntimeOptions:
    backoff_initial: float = 1.0  # seconds before a crashed container runs again, doubling
    backoff_max: float = 30.0
    stable_after: float = 10.0  # a run this long resets the back-off


class ProcessRuntime:
    def __init__(
        self,
        tasks: asyncio.TaskGroup,
        options: ProcessRuntimeOptions | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self._tasks = tasks
        self._options = options or ProcessRuntimeOptions()
        self.sandbox: Sandbox = sandbox or LoopbackSandbox()
        self._pods: dict[str, _Pod] = {}

    async def start(self, pod: PodSpec) -> None:
        if pod.uid in self._pods:
            return
        (pod.directory / "logs").mkdir(parents=True, exist_ok=True)
        has_init = any(c.init for c in pod.containers)
        running = _Pod(
            pod,
            {
                c.name: _Container(
                    c,
                    ContainerStatus(
                        c.name,
                        State.WAITING,
                        reason="PodInitializing"
                        if has_init and not c.init
                        else "ContainerCreating",
                    ),
                )
                for c in pod.containers
            },
        )
        self._pods[pod.uid] = running
        try:
            await self.sandbox.create(pod)
        except SandboxError as error:
            log.warning("pod %s/%s: %s", pod.namespace, pod.name, error)
            for entry in running.containers.values():
                entry.status = dataclasses.replace(
                    entry.status, message=f"failed to create pod sandbox: {error}"
                )
            return
        running.sandbox_ready = True
        running.supervisors.append(
            self._tasks.create_task(self._run_pod(running), name=f"pod-{pod.name}")
        )

    async def _run_pod(self, running: _Pod) -> None:
        pod = running.spec
        for container in (c for c in pod.containers if c.init):
            await self._run_init(running, running.containers[container.name])
        for container in (c for c in pod.containers if not c.init):
            entry = running.containers[container.name]
            await self._launch(running, entry)
            running.supervisors.append(
                self._tasks.create_task(
                    self._supervise(running, entry), name=f"pod-{pod.name}-{container.name}"
                )
            )

    async def stop(self, uid: str, grace: float) -> None:
        pod = self._pods.get(uid)
        if pod is None:
            return
        pod.stopping = True
        for task in pod.supervisors:
            task.cancel()
        for process in pod.execs:
            _signal_group(process.pid, signal.SIGKILL)  # a session's connection ends with it
        await asyncio.gather(*pod.supervisors, return_exceptions=True)
        processes = [c.process for c in pod.containers.values() if c.process is not None]
        for process in processes:
            _signal_group(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(max(grace, 0.0)):
                await asyncio.gather(*(p.wait() for p in processes))
        except TimeoutError:
            for process in processes:
                _signal_group(process.pid, signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in processes))
        for process in processes:
            _signal_group(process.pid, signal.SIGKILL)  # a child it left behind (Envoy)
        if pod.sandbox_ready:
            await self.sandbox.remove(pod.spec)
        with contextlib.suppress(FileNotFoundError):
            (pod.spec.directory / _STATE_FILE).unlink()
        del self._pods[uid]

    def status(self, uid: str) -> Sequence[ContainerStatus]:
        pod = self._pods.get(uid)
        return [c.status for c in pod.containers.values()] if pod is not None else []

    def pods(self) -> Sequence[str]:
        return list(self._pods)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(uid, 5.0) for uid in list(self._pods)))

    async def exec(
        self, uid: str, container: str, command: Sequence[str], *, stdin: bool, tty: bool = False
    ) -> ExecProcess:
        pod = self._pods.get(uid)
        entry = pod.containers.get(container) if pod is not None else None
        if pod is None or pod.stopping or entry is None or entry.status.state != State.RUNNING:
            # The kubelet's words for a container it does not run (now).
            raise ExecError(f'container not found ("{container}")')
        env = _container_env(pod.spec, entry.spec)
        if shutil.which(command[0], path=env.get("PATH")) is None:
            raise ExecError(f'exec: "{command[0]}": executable file not found in $PATH')
        user, group = exec_identity(entry.spec)
        argv = self.sandbox.exec_command(pod.spec, command, user, group)
        terminal: int | None = None
        try:
            if tty:
                terminal, end = os.openpty()
                try:
                    process = await asyncio.create_subprocess_exec(
                        *argv,
                        cwd="/",
                        env=env,
                        stdin=end,
                        stdout=end,
                        stderr=end,
                        preexec_fn=_take_terminal,
                    )
                finally:
                    os.close(end)
            else:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd="/",
                    env=env,
                    stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    start_new_session=True,
                )
        except OSError as error:
            if terminal is not None:
                os.close(terminal)
            raise ExecError(f"exec: {command[0]}: {error}") from None
        pod.execs.add(process)
        self._tasks.create_task(_forget(pod.execs, process), name=f"exec-{pod.spec.name}")
        return ExecProcess(process, terminal)

    # One container.

    async def _launch(self, pod: _Pod, container: _Container) -> None:
        spec = container.spec
        env = _container_env(pod.spec, spec)
        log_path = pod.spec.log_path(spec.name)
        with await asyncio.to_thread(open, log_path, "ab") as out:
            try:
                container.process = await asyncio.create_subprocess_exec(
                    *self.sandbox.command(pod.spec, spec),
                    cwd=ROOT,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as error:
                container.process = None
                container.status = dataclasses.replace(
                    container.status,
                    state=State.WAITING,
                    reason="RunContainerError",
                    message=str(error),
                )
                return
        container.status = ContainerStatus(
            spec.name, State.RUNNING, started_at=time.time(), restarts=container.status.restarts
        )
        self._record(pod)

    async def _supervise(self, pod: _Pod, container: _Container) -> None:
        delay = self._options.backoff_initial
        while True:
            if container.process is None:
                await asyncio.sleep(delay)
                await self._launch(pod, container)
                continue
            code = await container.process.wait()
            ran = time.time() - container.status.started_at
            reason = "Completed" if code == 0 else "Error"
            container.status = dataclasses.replace(
                container.status,
                state=State.TERMINATED,
                finished_at=time.time(),
                exit_code=code,
                reason=reason,
            )
            log.info(
                "%s/%s %s exited with %s",
                pod.spec.namespace,
                pod.spec.name,
                container.spec.name,
                code,
            )
            policy = pod.spec.restart_policy
            if policy == RestartPolicy.NEVER or (policy == RestartPolicy.ON_FAILURE and code == 0):
                return
            delay = self._options.backoff_initial if ran > self._options.stable_after else delay
            container.status = dataclasses.replace(
                container.status,
                state=State.WAITING,
                reason="CrashLoopBackOff",
                message=f"back-off {delay:g}s restarting failed container={container.spec.name}",
                restarts=container.status.restarts + 1,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._options.backoff_max)
            await self._launch(pod, container)

    async def _run_init(self, pod: _Pod, container: _Container) -> None:
        """Run an init container until it succeeds. As Kubernetes: a failed one is run again
        after a back-off (the pod shows Init:Error, then Init:CrashLoopBackOff while it waits),
        unless the pod's policy is Never: then the pod stays Init:Error until it is deleted."""
        delay = self._options.backoff_initial
        failures = 0
        while True:
            await self._launch(pod, container)
            if container.process is not None:
                code = await container.process.wait()
                container.status = dataclasses.replace(
                    container.status,
                    state=State.TERMINATED,
                    exit_code=code,
                    finished_at=time.time(),
                    reason="Completed" if code == 0 else "Error",
                )
                if code == 0:
                    return
                log.info(
                    "%s/%s: init container %s exited with %s",
                    pod.spec.namespace,
                    pod.spec.name,
                    container.spec.name,
                    code,
                )
            failures += 1
            if pod.spec.restart_policy == RestartPolicy.NEVER:
                await asyncio.Event().wait()  # cancelled when the pod stops
            if failures > 1 and container.process is not None:
                container.status = dataclasses.replace(
                    container.status,
                    state=State.WAITING,
                    reason="CrashLoopBackOff",
                    message=f"back-off {delay:g}s restarting failed container={container.spec.name}",
                )
            await asyncio.sleep(delay)
            container.status = dataclasses.replace(
                container.status, restarts=container.status.restarts + 1
            )
            delay = min(delay * 2, self._options.backoff_max)

    def _record(self, pod: _Pod) -> None:
        groups = [
            {"pid": c.process.pid, "start": _start_time(c.process.pid)}
            for c in pod.containers.values()
            if c.process is not None and c.process.returncode is None
        ]
        path = pod.spec.directory / _STATE_FILE
        path.write_text(json.dumps({"uid": pod.spec.uid, "groups": groups}))


def reap(pods_dir: pathlib.Path) -> list[str]:
    """Stops what a previous kubelet's pods left running; returns the pod folders it cleaned."""
    cleaned = []
    for state in sorted(pods_dir.glob(f"*/{_STATE_FILE}")):
        try:
            groups = json.loads(state.read_text()).get("groups") or []
        except (OSError, ValueError):
            groups = []
        for group in groups:
            pid, start = group.get("pid"), group.get("start")
            if isinstance(pid, int) and start is not None and _start_time(pid) == start:
                _signal_group(pid, signal.SIGKILL)
        state.unlink(missing_ok=True)
        cleaned.append(state.parent.name)
    return cleaned


NOBODY = 65534  # who runs a command in a container that names no user


def exec_identity(container: ContainerSpec) -> tuple[int, int | None]:
    """Who runs a command in the container: its user and group (its runAsUser, else its
    image's USER), else nobody. Never root unless the pod asks (runAsUser: 0), though a
    container without a user runs as the kubelet's: a command typed by hand gets no more."""
    if container.user is None:
        return NOBODY, NOBODY if container.group is None else container.group
    return container.user, container.group


def _take_terminal() -> None:
    """In the child, before exec: its own session (so its group is killed whole), with the
    terminal on its stdin as the controlling one (so a shell has job control, ^C a target)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _container_env(pod: PodSpec, container: ContainerSpec) -> dict[str, str]:
    env = base_env()
    env["HOSTNAME"] = pod.name  # a container's hostname is its pod's name
    env.update(dict(container.env))
    return env


async def _forget(
    execs: set[asyncio.subprocess.Process], process: asyncio.subprocess.Process
) -> None:
    try:
        await process.wait()
    finally:
        execs.discard(process)


def setpriv(argv: Sequence[str], user: int | None, group: int | None) -> list[str]:
    """`argv` as `user` and `group` (with no supplementary groups), through util-linux's setpriv."""
    ids = [] if user is None else [f"--reuid={user}"]
    ids += [] if group is None else [f"--regid={group}"]
    return ["setpriv", *ids, "--clear-groups", "--", *argv]


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _start_time(pid: int) -> int | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else int(fields[19])
