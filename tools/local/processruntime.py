"""A pod runtime that runs each container as a process on the pod's own loopback address.

No network namespace and no traffic interception (that needs root): every pod has its own
127.x address, so each binds the standard ports; a pod with a sidecar has its other
containers' HTTP go through the sidecar as their HTTP proxy (`http_proxy`), as Istio's
`INTERCEPTION_MODE: NONE`. Each container is a process in its own session (so it and its
children, an agent's Envoy, stop together), its output appended to the pod's log of it, and
restarted by the pod's restart policy with a back-off, as Kubernetes' CrashLoopBackOff.

The pods' process groups are written to `<pod dir>/processes.json`, so a kubelet that starts
after one that died can find what that one left running and stop it (`reap`).
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
import time
from collections.abc import Sequence

from tools.local.podruntime import ContainerSpec, ContainerStatus, PodSpec, RestartPolicy, State
from tools.local.topology import ROOT, base_env

log = logging.getLogger("kubelet.runtime")

OUTBOUND_PORT = 15001  # the sidecar's outbound listener, the apps' HTTP proxy
_STATE_FILE = "processes.json"


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


@dataclasses.dataclass(frozen=True)
class ProcessRuntimeOptions:
    backoff_initial: float = 1.0  # seconds before a crashed container runs again, doubling
    backoff_max: float = 30.0
    stable_after: float = 10.0  # a run this long resets the back-off


class ProcessRuntime:
    def __init__(
        self, tasks: asyncio.TaskGroup, options: ProcessRuntimeOptions | None = None
    ) -> None:
        self._tasks = tasks
        self._options = options or ProcessRuntimeOptions()
        self._pods: dict[str, _Pod] = {}

    async def start(self, pod: PodSpec) -> None:
        if pod.uid in self._pods:
            return
        (pod.directory / "logs").mkdir(parents=True, exist_ok=True)
        running = _Pod(
            pod,
            {
                c.name: _Container(
                    c, ContainerStatus(c.name, State.WAITING, reason="ContainerCreating")
                )
                for c in pod.containers
            },
        )
        self._pods[pod.uid] = running
        for container in (c for c in pod.containers if c.init):
            if not await self._run_init(running, running.containers[container.name]):
                return  # the pod stays initializing; the kubelet reports it
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

    # One container.

    async def _launch(self, pod: _Pod, container: _Container) -> None:
        spec = container.spec
        env = base_env()
        env["HOSTNAME"] = pod.spec.name  # a container's hostname is its pod's name
        if not spec.sidecar and any(c.sidecar for c in pod.spec.containers):
            env["http_proxy"] = f"http://{pod.spec.ip}:{OUTBOUND_PORT}"
        env.update(dict(spec.env))
        log_path = pod.spec.log_path(spec.name)
        with await asyncio.to_thread(open, log_path, "ab") as out:
            try:
                container.process = await asyncio.create_subprocess_exec(
                    *spec.argv,
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

    async def _run_init(self, pod: _Pod, container: _Container) -> bool:
        await self._launch(pod, container)
        if container.process is None:
            return False
        code = await container.process.wait()
        container.status = dataclasses.replace(
            container.status,
            state=State.TERMINATED,
            exit_code=code,
            finished_at=time.time(),
            reason="Completed" if code == 0 else "Error",
        )
        return code == 0

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
