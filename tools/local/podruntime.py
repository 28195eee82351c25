"""What the kubelet asks of whatever runs its pods (the CRI's role on a Kubernetes node).

A runtime starts a pod at an address the kubelet chose, with the containers the kubelet
resolved from the pod spec and the image table, keeps them running by the pod's restart
policy, stops them (gracefully, within a deadline), and reports each container's state. The
kubelet decides everything Kubernetes decides (which pods, which address, readiness from the
probes, the status it writes back); the runtime decides only how a container becomes a running
program. `processruntime.ProcessRuntime` runs each container as a process, in a sandbox
(the CRI's pod sandbox) that is either nothing (the pod's own loopback address, as a
non-root kubelet can give) or the pod's own network namespace (netnssandbox.py); the kubelet
does not change for either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import pathlib
from collections.abc import Sequence
from typing import Protocol


class RestartPolicy(enum.StrEnum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    sidecar: bool = False  # the mesh's proxy (the other containers' traffic may go through it)
    init: bool = False  # runs to completion before the others start
    user: int | None = None  # uid and gid it runs as where the sandbox can set them
    group: int | None = None


@dataclasses.dataclass(frozen=True)
class PodSpec:
    uid: str
    namespace: str
    name: str
    ip: str
    containers: tuple[ContainerSpec, ...]
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    directory: pathlib.Path = pathlib.Path()  # the pod's own folder: logs, the proxy's files

    def log_path(self, container: str) -> pathlib.Path:
        """Where a container's output goes (Kubernetes keeps /var/log/pods/<ns>_<pod>_<uid>/)."""
        return self.directory / "logs" / f"{container}.log"

    @property
    def hosts_file(self) -> pathlib.Path:
        """The pod's /etc/hosts as the kubelet writes it (a sandbox with its own /etc uses it)."""
        return self.directory / "etc-hosts"

    @property
    def resolv_file(self) -> pathlib.Path:
        return self.directory / "resolv.conf"


class State(enum.StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    TERMINATED = "terminated"


@dataclasses.dataclass(frozen=True)
class ContainerStatus:
    name: str
    state: State
    started_at: float = 0.0  # unix time of the current (or last) run
    finished_at: float = 0.0
    exit_code: int | None = None
    restarts: int = 0
    reason: str = ""  # Waiting: ContainerCreating, CrashLoopBackOff; Terminated: Completed, Error
    message: str = ""


class PodRuntime(Protocol):
    async def start(self, pod: PodSpec) -> None:
        """Creates the pod's sandbox and sets its containers going (init containers first, each
        to completion, then the others); returns once the sandbox exists."""
        ...

    async def stop(self, uid: str, grace: float) -> None:
        """Stops the pod: SIGTERM, then SIGKILL after `grace` seconds; returns once it is gone."""
        ...

    def status(self, uid: str) -> Sequence[ContainerStatus]:
        """Each container's state now (empty for a pod the runtime does not run)."""
        ...

    def pods(self) -> Sequence[str]:
        """The uids of the pods it runs."""
        ...

    async def close(self) -> None:
        """Stops every pod (the node is going away)."""
        ...


class ExecError(RuntimeError):
    """A command could not be run in a container: why, as Kubernetes words it."""


@dataclasses.dataclass
class ExecProcess:
    process: asyncio.subprocess.Process
    # With a terminal: the pseudo-terminal's master, the session's to read, write and close
    # (the process's stdin, stdout and stderr are its other end). Without: the pipes.
    terminal: int | None = None


class ContainerExec(Protocol):
    async def exec(
        self, uid: str, container: str, command: Sequence[str], *, stdin: bool, tty: bool = False
    ) -> ExecProcess:
        """Starts `command` in the running container's sandbox, as the container's user (a
        non-root one when the pod names none), with the container's environment; its stdout
        and stderr are pipes, stdin a pipe when asked for, or all three a new terminal that
        is the process's controlling one. Raises ExecError."""
        ...
