"""One `kubectl exec` session on the kubelet: a process's streams over an upgraded WebSocket.

The client's stdin frames go to the process's stdin (a v5 close signal for channel 0 closes
it, so `cat` ends); its stdout and stderr go back as frames, in order per stream, and once the
process has exited and both are drained, its exit status goes on the error channel and the
WebSocket is closed. A connection that ends first (the client hung up, or killed) takes the
process's whole session with it: SIGKILL, then reaped, so nothing outlives its caller.

With `tty`, the process's three streams are one pseudo-terminal (`terminal.py`): what it
writes goes back on stdout (a terminal has no stderr of its own), stdin frames are typed into
it, a resize frame sets its size, and stdin's close is an end-of-file typed (^D).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import aiohttp
from aiohttp import web

from pkg.kube import remotecommand as rc
from tools.local.podruntime import ExecProcess
from tools.local.terminal import EOF, Terminal

log = logging.getLogger("kubelet.exec")

CHUNK = 32 * 1024  # bytes of output per frame at most
REAP_TIMEOUT = 5.0  # seconds to wait for a killed process to be gone


async def run(
    ws: web.WebSocketResponse,
    session: ExecProcess,
    options: rc.ExecOptions,
) -> int | None:
    """Streams until the process ends (its exit code) or the connection does (None)."""
    protocol = ws.ws_protocol or rc.V4
    process = session.process
    tty = Terminal(session.terminal) if session.terminal is not None else None
    if tty is not None:
        outputs = [asyncio.create_task(_pump_terminal(tty, ws, options.stdout))]
    else:
        outputs = [
            asyncio.create_task(_pump(process.stdout, ws, rc.STDOUT, options.stdout)),
            asyncio.create_task(_pump(process.stderr, ws, rc.STDERR, options.stderr)),
        ]
    inputs = asyncio.create_task(_feed(ws, process, tty, protocol))
    finished = asyncio.gather(process.wait(), *outputs)
    try:
        await asyncio.wait((finished, inputs), return_when=asyncio.FIRST_COMPLETED)
        if not finished.done():
            # The connection is gone before the command ended.
            _kill(process)
            return None
        await finished
        code = process.returncode
        assert code is not None  # waited for
        exit_status = 128 - code if code < 0 else code  # a signal's, as a shell reports it
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_bytes(rc.status_frame(rc.exited(exit_status, options.command)))
        return exit_status
    finally:
        inputs.cancel()
        for task in outputs:
            task.cancel()
        _kill(process)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REAP_TIMEOUT):
                await process.wait()
        await asyncio.gather(inputs, finished, return_exceptions=True)
        if tty is not None:
            tty.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()


async def _pump(
    stream: asyncio.StreamReader | None, ws: web.WebSocketResponse, channel: int, wanted: bool
) -> None:
    """A stream's output as frames; read (and dropped) even when the client did not ask for
    it, so the process never blocks on a full pipe."""
    if stream is None:
        return
    while chunk := await stream.read(CHUNK):
        if wanted and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(rc.frame(channel, chunk))


async def _pump_terminal(tty: Terminal, ws: web.WebSocketResponse, wanted: bool) -> None:
    while chunk := await tty.read(CHUNK):
        if wanted and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(rc.frame(rc.STDOUT, chunk))


async def _feed(
    ws: web.WebSocketResponse,
    process: asyncio.subprocess.Process,
    tty: Terminal | None,
    protocol: str,
) -> None:
    """The client's frames until its connection ends (returns then)."""
    if tty is not None:
        await _feed_terminal(ws, tty, protocol)
        return
    stdin = process.stdin
    async for message in ws:
        if message.type == aiohttp.WSMsgType.BINARY:
            data = message.data
        elif message.type == aiohttp.WSMsgType.TEXT:
            # The channel protocols read a text message as its bytes, as a binary one (the
            # Python client sends str stdin as text).
            data = message.data.encode()
        else:
            continue
        try:
            frame = rc.parse(data, protocol)
        except rc.FramingError as error:
            log.info("exec: ignored a frame: %s", error)
            continue
        if frame.channel != rc.STDIN or stdin is None:
            continue  # resize: no terminal is allocated; the rest are not the client's
        if frame.closes:
            stdin.close()
            stdin = None
            continue
        try:
            stdin.write(frame.data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            stdin = None  # the command stopped reading; what it wrote still goes back


async def _feed_terminal(ws: web.WebSocketResponse, tty: Terminal, protocol: str) -> None:
    async for message in ws:
        data = message.data.encode() if message.type == aiohttp.WSMsgType.TEXT else message.data
        if message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            continue
        try:
            frame = rc.parse(data, protocol)
            if frame.channel == rc.RESIZE:
                tty.resize(rc.parse_resize(frame.data))
            elif frame.channel == rc.STDIN:
                await tty.write(EOF if frame.closes else frame.data)
        except rc.FramingError as error:
            log.info("exec: ignored a frame: %s", error)
        except OSError:
            return  # the terminal is gone with its process; the output says the rest


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
