"""`pods/<name>/exec`: a command in a pod's container, streamed, as the API server serves it.

    GET|POST /api/v1/namespaces/<ns>/pods/<name>/exec?command=..&container=..&stdin=..
             (WebSocket, subprotocol v5.channel.k8s.io or v4.channel.k8s.io)

The API server checks the request against the pod and hands the stream to the kubelet of the
pod's node; so does this: the pod must exist (404), the container be one of its own (400,
Kubernetes' "container x is not valid for pod y"; with no `container` the pod's only one or its
`kubectl.kubernetes.io/default-container`), the pod be on a node and its container running
(400, the words Kubernetes answers with). Then it opens the same protocol to the kubelet
(`/exec/<ns>/<pod>/<container>` at the pod's hostIP, the kubelet's port) and, once the kubelet
has accepted, accepts the client's upgrade and relays every frame both ways unchanged
(pkg/kube/remotecommand.py says what they are). Either side closing closes the other; the
kubelet kills the command when its connection goes.

SPDY, the protocol kubectl falls back to when a WebSocket upgrade fails, is not served: a
request for it is refused with a Status saying so, after the same checks (so an error that made
the WebSocket upgrade fail reads the same on the fallback).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import aiohttp
from aiohttp import web

from pilot.configstore import paths, status
from pilot.configstore.store import Store
from pkg.kube import remotecommand as rc

CONNECT_TIMEOUT = 5.0  # seconds to reach the kubelet
_COMPLETED = ("Succeeded", "Failed")


async def handle(
    request: web.Request, target: paths.Target, store: Store, kubelet_port: int
) -> web.StreamResponse:
    assert target.namespace is not None
    assert target.name is not None
    pod = store.get(target.schema, target.namespace, target.name)
    try:
        options = rc.parse_options(request.query, request.query.getall("command", []))
    except rc.ExecOptionsError as error:
        raise status.bad_request(str(error)) from None
    container = _container(pod, target.name, options.container)
    host = _running_host(pod, target.name, container)
    url = f"http://{host}:{kubelet_port}/exec/{target.namespace}/{target.name}/{container}"
    query = dataclasses.replace(options, container="").query()  # the path names it
    client = web.WebSocketResponse(protocols=rc.PROTOCOLS, max_msg_size=4 * 1024 * 1024)
    ready = client.can_prepare(request)
    if not ready.ok or ready.protocol is None:
        await _refuse_other_upgrades(request, host, kubelet_port)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            kubelet = await session.ws_connect(
                url,
                params=query,
                protocols=(str(ready.protocol),),
                autoping=True,
                max_msg_size=4 * 1024 * 1024,
            )
        except aiohttp.WSServerHandshakeError as error:
            raise status.bad_request(
                f"unable to upgrade connection: the kubelet of pod {target.name} answered "
                f"{error.status} {error.message}"
            ) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise status.StatusError(
                502,
                "InternalError",
                f"error dialing backend: the kubelet of pod {target.name} at "
                f"{host}:{kubelet_port} does not answer: {error or type(error).__name__}",
            ) from None
        async with kubelet:
            await client.prepare(request)
            await _relay(client, kubelet)
    return client


def _container(pod: dict[str, Any], name: str, wanted: str) -> str:
    spec = pod.get("spec") or {}
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    inits = [str(c.get("name")) for c in spec.get("initContainers") or []]
    if wanted:
        if wanted not in (*containers, *inits):
            raise status.bad_request(f"container {wanted} is not valid for pod {name}")
        return wanted
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    chosen = annotations.get("kubectl.kubernetes.io/default-container")
    if chosen in containers:
        return str(chosen)
    if len(containers) == 1:
        return containers[0]
    message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
    if inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise status.bad_request(message)


def _running_host(pod: dict[str, Any], name: str, container: str) -> str:
    """The address of the kubelet that runs the container now."""
    spec, state = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName") or not state.get("hostIP"):
        raise status.bad_request(f"pod {name} does not have a host assigned")
    phase = state.get("phase") or "Pending"
    if phase in _COMPLETED:
        raise status.bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    statuses = [
        *(state.get("containerStatuses") or []),
        *(state.get("initContainerStatuses") or []),
    ]
    running = any(
        s.get("name") == container and "running" in (s.get("state") or {}) for s in statuses
    )
    if not running:
        # What the kubelet answers the API server for a container it does not run.
        raise status.bad_request(
            f'unable to upgrade connection: container not found ("{container}")'
        )
    return str(state["hostIP"])


async def _refuse_other_upgrades(request: web.Request, host: str, port: int) -> None:
    """Not a WebSocket of ours (SPDY, or no subprotocol this server speaks): refused. Said
    after asking the kubelet is there, so that kubectl, falling back to SPDY after a failed
    WebSocket upgrade, shows why that failed rather than this."""
    timeout = aiohttp.ClientTimeout(total=CONNECT_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://{host}:{port}/healthz") as answer,
        ):
            await answer.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        raise status.StatusError(
            502,
            "InternalError",
            f"error dialing backend: the kubelet at {host}:{port} does not answer: "
            f"{error or type(error).__name__}",
        ) from None
    upgrade = request.headers.get("Upgrade", "")
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    if upgrade.lower().startswith("spdy"):
        message = (
            f"upgrade to {upgrade} is not served here: exec speaks WebSockets "
            f"({', '.join(rc.PROTOCOLS)}; kubectl 1.30 and later use them)"
        )
    else:
        message = (
            f"exec needs a WebSocket upgrade with subprotocol {' or '.join(rc.PROTOCOLS)} "
            f"(offered: {offered or 'none'})"
        )
    raise status.bad_request(message)


async def _relay(client: web.WebSocketResponse, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    """Frames both ways until either side closes; then the other is closed."""

    async def up() -> None:
        async for message in client:
            if message.type == aiohttp.WSMsgType.BINARY:
                await kubelet.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                await kubelet.send_str(message.data)

    async def down() -> None:
        async for message in kubelet:
            if message.type == aiohttp.WSMsgType.BINARY:
                await client.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                await client.send_str(message.data)

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await kubelet.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await client.close()
