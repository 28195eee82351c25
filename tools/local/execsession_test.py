"""`kubectl exec`'s kubelet end: the kubelet's /exec/ WebSocket, driven with aiohttp's test
client against a real process runtime (loopback sandbox, no root needed): frames per channel,
the status on the error channel, stdin and its v5 close, refusals, and hang-ups."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from pkg.kube import remotecommand as rc
from pkg.testing.aio import run_async
from pkg.testing.wait import eventually
from tools.local import kubeletserver
from tools.local.podruntime import ContainerSpec, PodSpec, State
from tools.local.processruntime import NOBODY, ProcessRuntime

PATH = "/exec/default/sleep-1/sleep"


def _pod(directory: pathlib.Path) -> PodSpec:
    return PodSpec(
        uid="exec-under-test",
        namespace="default",
        name="sleep-1",
        ip="127.0.0.1",
        containers=(
            ContainerSpec("sleep", "curlimages/curl", ("sleep", "60"), (("GREETING", "hi"),)),
        ),
        directory=directory,
    )


@contextlib.asynccontextmanager
async def kubelet(directory: pathlib.Path) -> AsyncIterator[tuple[TestClient, ProcessRuntime]]:
    async with asyncio.TaskGroup() as tasks:
        runtime = ProcessRuntime(tasks)
        pod = _pod(directory)
        await runtime.start(pod)
        try:
            await eventually(
                lambda: [s.state for s in runtime.status(pod.uid)] == [State.RUNNING],
                what="the pod's container running",
            )

            def lookup(namespace: str, name: str) -> PodSpec | None:
                return pod if (namespace, name) == ("default", "sleep-1") else None

            app = kubeletserver.make_app(lookup, runtime=runtime)
            async with TestClient(TestServer(app)) as client:
                yield client, runtime
        finally:
            await runtime.close()


def _query(*command: str, stdin: bool = False) -> list[tuple[str, str]]:
    options = rc.ExecOptions(command, stdin=stdin, stdout=True, stderr=True)
    return options.query()


async def _collect(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[int, bytes], dict]:
    """Every channel's data until the server closes, and the status."""
    seen: dict[int, bytes] = {}
    status: dict = {}
    async for message in ws:
        assert message.type == aiohttp.WSMsgType.BINARY, message
        channel, data = message.data[0], message.data[1:]
        if channel == rc.ERROR:
            assert not status, "one status only"
            status = json.loads(data)
        else:
            assert not status, "the status comes last"
            seen[channel] = seen.get(channel, b"") + data
    return seen, status


@run_async(timeout=30)
async def test_stdout_and_stderr_on_their_channels_then_success(tmp_path):
    async with kubelet(tmp_path) as (client, _):
        command = ("sh", "-c", "echo $GREETING from $HOSTNAME; echo oops >&2")
        async with client.ws_connect(PATH, params=_query(*command), protocols=(rc.V5,)) as ws:
            assert ws.protocol == rc.V5
            seen, status = await _collect(ws)
    assert seen == {rc.STDOUT: b"hi from sleep-1\n", rc.STDERR: b"oops\n"}
    assert status == rc.success()


@run_async(timeout=30)
async def test_a_non_zero_exit_is_a_failure_status_with_its_code(tmp_path):
    async with kubelet(tmp_path) as (client, _):
        query = _query("sh", "-c", "exit 3")
        async with client.ws_connect(PATH, params=query, protocols=(rc.V4,)) as ws:
            assert ws.protocol == rc.V4
            seen, status = await _collect(ws)
    assert seen == {}
    assert (status["reason"], rc.exit_code(status)) == ("NonZeroExitCode", 3)


@run_async(timeout=30)
async def test_stdin_reaches_the_command_and_its_close_ends_it(tmp_path):
    async with kubelet(tmp_path) as (client, _):
        query = _query("cat", stdin=True)
        async with client.ws_connect(PATH, params=query, protocols=(rc.V5, rc.V4)) as ws:
            await ws.send_bytes(rc.frame(rc.STDIN, b"hello "))
            await ws.send_str("\x00mesh")  # as text, as the Python client sends a str
            await ws.send_bytes(rc.frame(rc.STDIN, b"\n"))
            await ws.send_bytes(rc.frame(rc.RESIZE, b'{"Width": 80, "Height": 24}'))
            await ws.send_bytes(b"\x09not a channel")  # ignored, not fatal
            await ws.send_bytes(rc.close_frame(rc.STDIN))
            seen, status = await _collect(ws)
    assert seen == {rc.STDOUT: b"hello mesh\n"}
    assert status == rc.success()


@run_async(timeout=30)
async def test_the_command_runs_as_the_containers_user_never_root_by_default(tmp_path):
    async with (
        kubelet(tmp_path) as (client, _),
        client.ws_connect(PATH, params=_query("id", "-u"), protocols=(rc.V5,)) as ws,
    ):
        seen, _status = await _collect(ws)
    # The container names no user: a root kubelet runs the command as nobody.
    expected = NOBODY if os.geteuid() == 0 else os.geteuid()
    assert seen[rc.STDOUT].strip() == str(expected).encode()


@run_async(timeout=30)
async def test_a_command_that_is_not_there_fails_on_the_error_channel(tmp_path):
    async with kubelet(tmp_path) as (client, _):
        query = _query("no-such-program-here")
        async with client.ws_connect(PATH, params=query, protocols=(rc.V5,)) as ws:
            seen, status = await _collect(ws)
    assert seen == {}
    assert status["status"] == "Failure"
    assert status["reason"] == "InternalError"
    assert 'exec: "no-such-program-here": executable file not found in $PATH' in status["message"]


async def _refused(client: TestClient, path: str, query, protocols) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with client.ws_connect(path, params=query, protocols=protocols):
            pass
    return refused.value.status


@run_async(timeout=30)
async def test_refusals_come_before_the_upgrade(tmp_path):
    async with kubelet(tmp_path) as (client, _):
        cases = {
            "/exec/default/sleep-1/other": (_query("ls"), 400, "container not found"),
            "/exec/default/nobody-1/sleep": (_query("ls"), 404, "not running"),
            PATH: ([("stdout", "true")], 400, "at least 1 command"),
        }
        for path, (query, code, words) in cases.items():
            assert await _refused(client, path, query, (rc.V5,)) == code, path
            async with client.get(path, params=query) as answer:
                assert answer.status == code, path
                assert words in await answer.text(), path
        # A WebSocket with no subprotocol of the protocol's (the base64 one is not served).
        assert await _refused(client, PATH, _query("ls"), ("base64.channel.k8s.io",)) == 400


@run_async(timeout=30)
async def test_a_tty_is_a_terminal_of_the_size_the_client_says(tmp_path):
    options = rc.ExecOptions(
        ("sh", "-c", "test -t 0 && test -t 2 && read go && stty size && echo err >&2; exit 5"),
        stdin=True,
        stdout=True,
        stderr=True,
        tty=True,
    )
    async with (
        kubelet(tmp_path) as (client, _),
        client.ws_connect(PATH, params=options.query(), protocols=(rc.V5,)) as ws,
    ):
        await ws.send_bytes(rc.frame(rc.RESIZE, b'{"Width": 100, "Height": 40}'))
        await ws.send_bytes(rc.frame(rc.STDIN, b"go\n"))
        seen, status = await _collect(ws)
    # One stream, as a terminal shows it: the typed line echoed, then the output, \r\n each.
    assert seen == {rc.STDOUT: b"go\r\n40 100\r\nerr\r\n"}
    assert rc.exit_code(status) == 5


@run_async(timeout=30)
async def test_a_ttys_end_of_input_ends_cat(tmp_path):
    options = rc.ExecOptions(("cat",), stdin=True, stdout=True, tty=True)
    async with (
        kubelet(tmp_path) as (client, _),
        client.ws_connect(PATH, params=options.query(), protocols=(rc.V5,)) as ws,
    ):
        await ws.send_bytes(rc.frame(rc.STDIN, b"typed\n"))
        await ws.send_bytes(rc.close_frame(rc.STDIN))
        seen, status = await _collect(ws)
    assert seen == {rc.STDOUT: b"typed\r\ntyped\r\n"}  # echoed by the terminal, then by cat
    assert status == rc.success()


def _gone(pid: int) -> bool:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@run_async(timeout=30)
async def test_a_hang_up_kills_the_command(tmp_path):
    async with kubelet(tmp_path) as (client, _):
        query = _query("sh", "-c", "echo $$; exec sleep 30")
        async with client.ws_connect(PATH, params=query, protocols=(rc.V5,)) as ws:
            first = await ws.receive_bytes(timeout=10)
            assert first[0] == rc.STDOUT
            pid = int(first[1:].strip())
            assert not _gone(pid)
        await eventually(lambda: _gone(pid), what="the command killed with its connection")


@run_async(timeout=30)
async def test_a_stopping_pod_takes_its_exec_sessions(tmp_path):
    async with kubelet(tmp_path) as (client, runtime):
        query = _query("sh", "-c", "echo $$; exec sleep 30")
        async with client.ws_connect(PATH, params=query, protocols=(rc.V5,)) as ws:
            first = await ws.receive_bytes(timeout=10)
            pid = int(first[1:].strip())
            await runtime.stop("exec-under-test", grace=1.0)
            _, status = await _collect(ws)
        assert _gone(pid)
        assert rc.exit_code(status) == 137  # SIGKILL's, as a shell reports it
