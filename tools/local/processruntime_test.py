"""The process runtime's pod lifecycle with the loopback sandbox (no root needed): init
containers run first and to completion; a failing one is run again with back-off while the
pod's other containers wait, as Kubernetes shows Init:Error then Init:CrashLoopBackOff."""

from __future__ import annotations

import asyncio
import pathlib

from pkg.testing.aio import run_async
from pkg.testing.wait import eventually
from tools.local.podruntime import ContainerSpec, PodSpec, RestartPolicy, State
from tools.local.processruntime import ProcessRuntime, ProcessRuntimeOptions

FAST = ProcessRuntimeOptions(backoff_initial=0.2, backoff_max=0.4)


def _pod(directory: pathlib.Path, init: tuple[str, ...], policy: RestartPolicy) -> PodSpec:
    return PodSpec(
        uid="pod-under-test",
        namespace="default",
        name="app-1",
        ip="127.0.0.1",
        containers=(
            ContainerSpec("init", "busybox", init, (), init=True),
            ContainerSpec("app", "busybox", ("sleep", "30"), ()),
        ),
        restart_policy=policy,
        directory=directory,
    )


@run_async(timeout=30)
async def test_a_failing_init_container_is_retried_and_holds_the_pod_back(tmp_path):
    async with asyncio.TaskGroup() as tasks:
        runtime = ProcessRuntime(tasks, FAST)
        pod = _pod(tmp_path, ("sh", "-c", "echo no network; exit 3"), RestartPolicy.ALWAYS)
        await runtime.start(pod)

        def states() -> dict[str, object]:
            return {s.name: s for s in runtime.status(pod.uid)}

        await eventually(lambda: states()["init"].state == State.TERMINATED, what="init ran")
        first = states()["init"]
        assert (first.exit_code, first.reason) == (3, "Error")
        await eventually(
            lambda: (
                states()["init"].reason == "CrashLoopBackOff" and states()["init"].restarts >= 1
            ),
            what="init in back-off after failing again",
        )
        app = states()["app"]
        assert (app.state, app.reason) == (State.WAITING, "PodInitializing")
        assert "no network" in pod.log_path("init").read_text()
        await runtime.stop(pod.uid, grace=1.0)
        assert runtime.pods() == []


@run_async(timeout=30)
async def test_the_app_starts_once_its_init_container_succeeds(tmp_path):
    async with asyncio.TaskGroup() as tasks:
        runtime = ProcessRuntime(tasks, FAST)
        marker = tmp_path / "ran"
        pod = _pod(tmp_path, ("touch", str(marker)), RestartPolicy.NEVER)
        await runtime.start(pod)
        await eventually(
            lambda: any(
                s.name == "app" and s.state == State.RUNNING for s in runtime.status(pod.uid)
            ),
            what="the app running",
        )
        [init] = [s for s in runtime.status(pod.uid) if s.name == "init"]
        assert (init.state, init.exit_code, init.reason) == (State.TERMINATED, 0, "Completed")
        assert marker.exists()
        await runtime.stop(pod.uid, grace=1.0)
