"""The store's `pods/<name>/exec`: Kubernetes' checks and Status refusals, then frames relayed
unchanged to the kubelet of the pod's node and back. The kubelet here is a small peer
speaking the protocol's kubelet end (the real one is tools/local/kubeletserver.py, proved
with kubectl in tools/local/kubectl_exec_test.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pilot.configstore.server import ConfigStoreServer, Options, serving
from pkg.kube import remotecommand as rc
from pkg.testing.aio import run_async

HOST = "127.0.0.1"
PODS = "/api/v1/namespaces/default/pods"


class KubeletPeer:
    """The kubelet's end: stdin echoed on stdout; stdin's close ends it with Success."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, list[tuple[str, str]], str | None]] = []
        self.closed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=rc.PROTOCOLS)
        await ws.prepare(request)
        self.requests.append((request.path, list(request.query.items()), ws.ws_protocol))
        await ws.send_bytes(rc.frame(rc.STDERR, b"started\n"))
        async for message in ws:
            frame = rc.parse(message.data, ws.ws_protocol or rc.V4)
            if frame.closes:
                await ws.send_bytes(rc.status_frame(rc.success()))
                await ws.close()
            else:
                await ws.send_bytes(rc.frame(rc.STDOUT, frame.data))
        self.closed.set()
        return ws


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _pod(name: str, node: str | None = "local", containers: tuple[str, ...] = ("sleep",)):
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "curl"} for c in containers]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _status(host: str, phase: str = "Running", state: dict[str, Any] | None = None):
    return {
        "status": {
            "phase": phase,
            "hostIP": host,
            "containerStatuses": [
                {
                    "name": "sleep",
                    "ready": True,
                    "restartCount": 0,
                    "image": "curl",
                    "imageID": "",
                    "state": state or {"running": {}},
                },
            ],
        }
    }


@contextlib.asynccontextmanager
async def node(tmp_path: pathlib.Path) -> AsyncIterator[tuple[aiohttp.ClientSession, KubeletPeer]]:
    port = _free_port()
    peer = KubeletPeer()
    app = web.Application()
    app.router.add_get("/exec/{namespace}/{pod}/{container}", peer.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
        options = Options(address=HOST, port=0, db=tmp_path / "db", kubelet_port=port)
        server: ConfigStoreServer
        async with serving(options) as server, aiohttp.ClientSession(server.url) as http:
            pods = {
                "sleep-1": (_pod("sleep-1"), _status(HOST)),
                "two-1": (_pod("two-1", containers=("sleep", "istio-proxy")), _status(HOST)),
                "pending-1": (_pod("pending-1", node=None), None),
                "done-1": (
                    _pod("done-1"),
                    _status(HOST, "Failed", {"terminated": {"exitCode": 1}}),
                ),
                "waiting-1": (_pod("waiting-1"), _status(HOST, state={"waiting": {}})),
                "far-1": (_pod("far-1"), _status("127.0.0.3")),
            }
            for name, (pod, status) in pods.items():
                async with http.post(PODS, json=pod) as created:
                    assert created.status == 201, await created.text()
                if status is not None:
                    async with http.patch(
                        f"{PODS}/{name}/status",
                        data=json.dumps(status),
                        headers={"Content-Type": "application/merge-patch+json"},
                    ) as patched:
                        assert patched.status == 200, await patched.text()
            yield http, peer
    finally:
        await runner.cleanup()


def _query(container: str = "sleep", *command: str) -> list[tuple[str, str]]:
    options = rc.ExecOptions(command or ("cat",), container, stdin=True, stdout=True)
    return options.query()


@run_async(timeout=30)
async def test_frames_go_to_the_pods_kubelet_and_back_unchanged(tmp_path):
    async with node(tmp_path) as (http, peer):
        path = f"{PODS}/sleep-1/exec"
        query = _query("sleep", "sh", "-c", "cat")
        async with http.ws_connect(path, params=query, protocols=(rc.V5, rc.V4)) as ws:
            assert ws.protocol == rc.V5
            assert await ws.receive_bytes(timeout=5) == b"\x02started\n"
            await ws.send_bytes(rc.frame(rc.STDIN, b"\x00\xffbinary"))
            assert await ws.receive_bytes(timeout=5) == b"\x01\x00\xffbinary"
            await ws.send_bytes(rc.close_frame(rc.STDIN))
            status = await ws.receive_bytes(timeout=5)
            assert json.loads(status[1:]) == rc.success()
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    ((kubelet_path, kubelet_query, protocol),) = peer.requests
    assert kubelet_path == "/exec/default/sleep-1/sleep"
    assert kubelet_query == [
        ("command", "sh"),
        ("command", "-c"),
        ("command", "cat"),
        ("stdin", "true"),
        ("stdout", "true"),
    ]
    assert protocol == rc.V5


@run_async(timeout=30)
async def test_a_client_that_hangs_up_closes_the_kubelets_connection(tmp_path):
    async with node(tmp_path) as (http, peer):
        async with http.ws_connect(f"{PODS}/sleep-1/exec", params=_query(), protocols=(rc.V4,)):
            pass
        await asyncio.wait_for(peer.closed.wait(), 5)


@pytest.mark.parametrize(
    ("pod", "query", "code", "message"),
    [
        ("nope-1", _query(), 404, 'pods "nope-1" not found'),
        ("sleep-1", _query("other"), 400, "container other is not valid for pod sleep-1"),
        (
            "two-1",
            _query(""),
            400,
            "a container name must be specified for pod two-1, choose one of: [sleep istio-proxy]",
        ),
        ("sleep-1", [("stdout", "true")], 400, "you must specify at least 1 command"),
        (
            "sleep-1",
            [("command", "ls")],
            400,
            "you must specify at least 1 of stdin, stdout, stderr",
        ),
        ("pending-1", _query(), 400, "pod pending-1 does not have a host assigned"),
        (
            "done-1",
            _query(),
            400,
            "cannot exec into a container in a completed pod; current phase is Failed",
        ),
        ("waiting-1", _query(), 400, 'unable to upgrade connection: container not found ("sleep")'),
        ("far-1", _query(), 502, "error dialing backend"),
    ],
)
def test_refusals_are_kubernetes_statuses_before_any_upgrade(tmp_path, pod, query, code, message):
    @run_async(timeout=30)
    async def scenario() -> None:
        async with node(tmp_path) as (http, peer):
            path = f"{PODS}/{pod}/exec"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with http.ws_connect(path, params=query, protocols=(rc.V5,)):
                    pass
            assert refused.value.status == code
            # The same request as SPDY (kubectl's fallback) reads the same.
            headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
            async with http.post(path, params=query, headers=headers) as answer:
                body = await answer.json()
            assert answer.status == code
            assert body["kind"] == "Status"
            assert message in body["message"]
            assert peer.requests == []

    scenario()


@run_async(timeout=30)
async def test_spdy_and_unknown_subprotocols_are_refused_for_a_running_pod(tmp_path):
    async with node(tmp_path) as (http, peer):
        path = f"{PODS}/sleep-1/exec"
        spdy = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
        async with http.post(path, params=_query(), headers=spdy) as answer:
            assert answer.status == 400
            assert "upgrade to SPDY/3.1 is not served here" in (await answer.json())["message"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with http.ws_connect(path, params=_query(), protocols=("channel.k8s.io",)):
                pass
        assert refused.value.status == 400
        assert peer.requests == []


@run_async(timeout=30)
async def test_discovery_lists_pods_exec(tmp_path):
    async with node(tmp_path) as (http, _), http.get("/api/v1") as answer:
        resources = {r["name"]: r for r in (await answer.json())["resources"]}
    assert resources["pods/exec"]["verbs"] == ["create", "get"]
    assert resources["pods/exec"]["kind"] == "PodExecOptions"
