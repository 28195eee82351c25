"""`kubectl exec` and the Python client's `stream` through the real config store to the real
kubelet server and process runtime (loopback sandbox: no root, no mesh): output, exit codes,
stdin, `deploy/<name>` resolution, and the refusals Kubernetes gives, as each client shows
them. The whole mesh with captured pods is tests/e2e/kubectl_exec_netns_test.py."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import http.client
import json
import os
import pathlib
import select
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client as kube
from kubernetes import config as kubeconfig
from kubernetes.stream import stream

from pilot.configstore.server import ConfigStoreServer, Options
from pilot.configstore.testing import KUBECTL, Kubectl
from pkg.kube import remotecommand as rc
from pkg.testing.wait import poll
from tools.local import kubeletserver
from tools.local.podruntime import ContainerSpec, PodSpec, State
from tools.local.processruntime import ProcessRuntime

HOST = "127.0.0.1"
UNREACHABLE_HOST = "127.0.0.3"  # a node whose kubelet nothing serves

SLEEP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep}
spec:
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep}}
    spec:
      containers:
      - {name: sleep, image: curlimages/curl, command: [/bin/sleep, infinity]}
"""


def _pod(name: str, node: str | None, labels: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {"name": "sleep", "image": "curlimages/curl", "command": ["/bin/sleep", "infinity"]},
            {"name": "istio-proxy", "image": "istio/proxyv2"},
        ]
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def _running(
    host: str, phase: str = "Running", state: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "status": {
            "phase": phase,
            "hostIP": host,
            "podIP": host,
            "containerStatuses": [
                {
                    "name": "sleep",
                    "ready": True,
                    "restartCount": 0,
                    "image": "curlimages/curl",
                    "imageID": "",
                    "state": state or {"running": {}},
                },
            ],
        }
    }


class Node:
    """The store and one kubelet (server + process runtime) on a loop in a background thread."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self.kubelet_port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.pods: dict[tuple[str, str], PodSpec] = {}
        self.url = ""
        self._stop = asyncio.Event()
        self._done: Any = None

    def __enter__(self) -> Node:
        self.thread.start()
        ready: asyncio.Future[None] = self.loop.create_future()
        self._done = asyncio.run_coroutine_threadsafe(self._serve(ready), self.loop)
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(_wrap(ready), 20), self.loop).result(25)
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._done.result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        options = Options(
            address=HOST, port=0, db=self.directory / "store.db", kubelet_port=self.kubelet_port
        )
        store = ConfigStoreServer(options=options)
        await store.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                self.runtime = ProcessRuntime(tasks)
                app = kubeletserver.make_app(
                    lambda ns, name: self.pods.get((ns, name)), runtime=self.runtime
                )
                from aiohttp import web

                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                try:
                    await web.TCPSite(runner, HOST, self.kubelet_port).start()
                    self.url = store.url
                    ready.set_result(None)
                    await self._stop.wait()
                finally:
                    await runner.cleanup()
                    await self.runtime.close()
        finally:
            await store.stop()

    def run_pod(self, pod: dict[str, Any]) -> None:
        """Runs the stored pod's `sleep` container, as its kubelet would."""
        meta = pod["metadata"]
        spec = PodSpec(
            uid=meta["uid"],
            namespace=meta["namespace"],
            name=meta["name"],
            ip=HOST,
            containers=(
                ContainerSpec("sleep", "curlimages/curl", ("sleep", "600"), (("GREETING", "hi"),)),
            ),
            directory=self.directory / meta["name"],
        )
        self.pods[(spec.namespace, spec.name)] = spec
        asyncio.run_coroutine_threadsafe(self.runtime.start(spec), self.loop).result(10)
        poll(
            lambda: [s.state for s in self.runtime.status(spec.uid)] == [State.RUNNING],
            "the pod's container running",
            10,
        )


async def _wrap(future: asyncio.Future[None]) -> None:
    await future


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Kubectl]]:
    directory = tmp_path_factory.mktemp("exec-node")
    with Node(directory) as running:
        kubectl = Kubectl(running.url, directory / "kubectl")
        kubectl.run("apply", "-f", "-", input=SLEEP)
        manifests = [
            _pod("sleep-1", "local", {"app": "sleep"}),
            _pod("pending-1", None, {"app": "pending"}),
            _pod("done-1", "local", {"app": "done"}),
            _pod("waiting-1", "local", {"app": "waiting"}),
            _pod("far-1", "elsewhere", {"app": "far"}),
        ]
        kubectl.run("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
        statuses = {
            "sleep-1": _running(HOST),
            "done-1": _running(HOST, "Succeeded", {"terminated": {"exitCode": 0}}),
            "waiting-1": _running(HOST, state={"waiting": {"reason": "CrashLoopBackOff"}}),
            "far-1": _running(UNREACHABLE_HOST),
        }
        for name, status in statuses.items():
            kubectl.run(
                "patch",
                "pod",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps(status),
            )
        running.run_pod(json.loads(kubectl.run("get", "pod", "sleep-1", "-o", "json").stdout))
        yield running, kubectl


def test_kubectl_exec_runs_the_command_in_the_pod(node):
    _, kubectl = node
    done = kubectl.run(
        "exec",
        "sleep-1",
        "-c",
        "sleep",
        "--",
        "sh",
        "-c",
        "echo $GREETING from $HOSTNAME; echo to stderr >&2",
    )
    assert done.stdout == "hi from sleep-1\n"
    assert done.stderr == "to stderr\n"


def test_kubectl_exec_finds_the_pod_of_a_deployment(node):
    _, kubectl = node
    done = kubectl.run("exec", "deploy/sleep", "-c", "sleep", "--", "printenv", "HOSTNAME")
    assert done.stdout == "sleep-1\n"


def test_kubectl_exec_exits_with_the_commands_code(node):
    _, kubectl = node
    done = kubectl.run("exec", "sleep-1", "-c", "sleep", "--", "sh", "-c", "exit 3", check=False)
    assert done.returncode == 3, done.stderr
    assert "command terminated with exit code 3" in done.stderr


def test_kubectl_exec_i_streams_stdin_until_it_ends(node):
    _, kubectl = node
    text = "".join(f"line {i}\n" for i in range(2000))  # more than one frame
    done = kubectl.run("exec", "-i", "sleep-1", "-c", "sleep", "--", "cat", input=text)
    assert done.stdout == text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nope-1", "-c", "sleep"), 'Error from server (NotFound): pods "nope-1" not found'),
        (
            ("sleep-1", "-c", "other"),
            "Error from server (BadRequest): container other is not valid for pod sleep-1",
        ),
        (
            ("pending-1", "-c", "sleep"),
            "Error from server (BadRequest): pod pending-1 does not have a host assigned",
        ),
        (
            ("waiting-1", "-c", "sleep"),
            'unable to upgrade connection: container not found ("sleep")',
        ),
        (("far-1", "-c", "sleep"), "error dialing backend"),
        (
            ("sleep-1", "-c", "sleep", "--", "no-such-program"),
            'exec: "no-such-program": executable file not found in $PATH',
        ),
    ],
)
def test_kubectl_exec_shows_kubernetes_refusals(node, args, words):
    _, kubectl = node
    command = args if "--" in args else (*args, "--", "true")
    done = kubectl.run("exec", *command, check=False)
    assert done.returncode != 0
    assert words in done.stderr, done.stderr


def test_kubectl_itself_refuses_a_completed_pod(node):
    _, kubectl = node
    done = kubectl.run("exec", "done-1", "-c", "sleep", "--", "true", check=False)
    assert "cannot exec into a container in a completed pod; current phase is Succeeded" in (
        done.stderr
    )


def test_a_pod_with_two_containers_needs_a_container_name(node):
    nodes, _ = node
    with contextlib.closing(http.client.HTTPConnection(*nodes.url[7:].split(":"))) as conn:
        conn.request("POST", "/api/v1/namespaces/default/pods/sleep-1/exec?command=ls&stdout=1")
        answer = conn.getresponse()
        status = json.loads(answer.read())
    assert answer.status == 400
    assert status["reason"] == "BadRequest"
    assert status["message"] == (
        "a container name must be specified for pod sleep-1, choose one of: [sleep istio-proxy]"
    )


def test_spdy_is_refused_with_a_status_saying_so(node):
    nodes, _ = node
    with contextlib.closing(http.client.HTTPConnection(*nodes.url[7:].split(":"))) as conn:
        conn.request(
            "POST",
            "/api/v1/namespaces/default/pods/sleep-1/exec?command=ls&stdout=1&container=sleep",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "SPDY/3.1",
                "X-Stream-Protocol-Version": "v4.channel.k8s.io",
            },
        )
        answer = conn.getresponse()
        status = json.loads(answer.read())
    assert answer.status == 400
    assert "SPDY/3.1 is not served here" in status["message"]


def test_kubectl_exec_it_gives_a_terminal(node):
    """kubectl on a terminal of its own (a pty this test holds), as a person types at it."""
    _, kubectl = node
    ours, theirs = os.openpty()
    # Sized before kubectl starts, so its first resize frame carries it; the shell asks for
    # the size only after a typed line, which reaches it after that frame.
    fcntl.ioctl(ours, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    try:
        process = subprocess.Popen(
            [
                KUBECTL,
                f"--kubeconfig={kubectl.kubeconfig}",
                "exec",
                "-it",
                "sleep-1",
                "-c",
                "sleep",
                "--",
                "sh",
                "-c",
                "read line; stty size; echo got $line; tty; exit 5",
            ],
            stdin=theirs,
            stdout=theirs,
            stderr=theirs,
            start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(kubectl.home)},
        )
    finally:
        os.close(theirs)
    try:
        os.write(ours, b"mesh\r")
        seen = _read_until(ours, b"33 111")
        seen += _read_until(ours, b"/dev/pts/")
        assert process.wait(timeout=20) == 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(ours)
    assert b"got mesh" in seen


def _read_until(fd: int, wanted: bytes, timeout: float = 20.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        assert ready, f"{wanted!r} not seen within {timeout}s: {seen!r}"
        try:
            seen += os.read(fd, 4096)
        except OSError:
            break
    assert wanted in seen, seen
    return seen


@pytest.fixture
def core(node) -> Iterator[kube.CoreV1Api]:
    _, kubectl = node
    api = kubeconfig.new_client_from_config(config_file=str(kubectl.kubeconfig))
    try:
        yield kube.CoreV1Api(api)
    finally:
        api.close()


def test_the_python_client_streams_an_exec(core):
    out = stream(
        core.connect_get_namespaced_pod_exec,
        "sleep-1",
        "default",
        command=["sh", "-c", "echo $GREETING"],
        container="sleep",
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out == "hi\n"


def test_the_python_client_reads_the_exit_code_and_writes_stdin(core):
    session = stream(
        core.connect_get_namespaced_pod_exec,
        "sleep-1",
        "default",
        command=["sh", "-c", "read line; echo got $line; exit 4"],
        container="sleep",
        stderr=True,
        stdin=True,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    try:
        session.write_stdin("mesh\n")
        session.run_forever(timeout=20)
        assert session.read_stdout() == "got mesh\n"
        assert session.returncode == 4
        assert session.subprotocol == rc.V5  # the Python client offers v5 first, then v4
    finally:
        session.close()
