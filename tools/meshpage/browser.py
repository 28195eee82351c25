"""A real browser for tests: Debian's Chromium, headless, driven over the DevTools protocol.

    async with Browser.launch(profile_dir) as browser:
        await browser.navigate("http://127.0.0.1:20001/")
        await browser.wait_for("document.body.dataset.edges > 0", timeout=30)
        await browser.screenshot(path)

Chromium starts with a fresh profile, no network of its own (no component updates, sync,
first-run or background fetches) and its DevTools endpoint on loopback; nothing is downloaded.
Every wait is bounded, and closing kills the browser's whole process group.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from typing import IO, Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    pass


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError(
        "Chromium is not installed (Debian's `chromium`; tools/setup.sh installs it)"
    )


class Browser:
    def __init__(self, process: subprocess.Popen[bytes], ws: aiohttp.ClientWebSocketResponse,
                 session: aiohttp.ClientSession) -> None:  # fmt: skip
        self._process = process
        self._ws = ws
        self._session = session
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._events: dict[str, list[asyncio.Future[Any]]] = {}
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")
        self.console: list[str] = []  # the page's console messages and uncaught errors

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(
        cls, profile_dir: pathlib.Path, *, width: int = 1400, height: int = 1000
    ) -> AsyncIterator[Browser]:
        process, log = await asyncio.to_thread(_start_chromium, profile_dir, width, height)
        browser: Browser | None = None
        session = aiohttp.ClientSession()
        try:
            port = await _devtools_port(profile_dir, process)
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [t for t in await response.json() if t.get("type") == "page"]
            if not pages:
                raise BrowserError("Chromium opened no page")
            ws = await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
            browser = cls(process, ws, session)
            await browser.send("Page.enable")
            await browser.send("Runtime.enable")
            yield browser
        finally:
            if browser is not None:
                await browser._close()
            await session.close()
            try:
                await asyncio.to_thread(_kill, process)  # up to 10 s: off the event loop
            finally:
                log.close()

    async def send(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30
    ) -> Any:
        message_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._ws.send_str(
            json.dumps({"id": message_id, "method": method, "params": params or {}})
        )
        async with asyncio.timeout(timeout):
            return await future

    def _expect(self, event: str) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._events.setdefault(event, []).append(future)
        return future

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(BrowserError(f"{data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                continue
            method = data.get("method", "")
            params = data.get("params", {})
            if method == "Runtime.consoleAPICalled":
                texts = [
                    str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
                ]
                self.console.append(f"console.{params.get('type')}: {' '.join(texts)}")
            elif method == "Runtime.exceptionThrown":
                self.console.append(
                    f"uncaught: {params.get('exceptionDetails', {}).get('exception', {}).get('description', params)}"
                )
            for future in self._events.pop(method, []):
                if not future.done():
                    future.set_result(params)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrowserError("the DevTools connection closed"))

    async def navigate(self, url: str, timeout: float = 30) -> None:
        loaded = self._expect("Page.loadEventFired")
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")
        async with asyncio.timeout(timeout):
            await loaded

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]!r} threw: {description}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, *, timeout: float, what: str = "") -> Any:
        """Poll `expression` until it is truthy; its value, or BrowserError after `timeout`."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = await self.evaluate(expression)
            if last:
                return last
            await asyncio.sleep(0.25)
        raise BrowserError(f"waited {timeout:.0f}s for {what or expression!r}; last value {last!r}")

    async def screenshot(self, path: pathlib.Path) -> pathlib.Path:
        result = await self.send("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(_write_file, path, base64.b64decode(result["data"]))
        return path

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("Browser.close", timeout=5), 5)
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _devtools_port(profile_dir: pathlib.Path, process: subprocess.Popen[bytes]) -> int:
    """Chromium writes the port it picked to DevToolsActivePort in the profile."""
    path = profile_dir / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"Chromium exited with status {process.returncode} at start-up")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(path.read_text().splitlines()[0])
        await asyncio.sleep(0.1)
    raise BrowserError("Chromium did not open its DevTools port within 30s")


def _start_chromium(
    profile_dir: pathlib.Path, width: int, height: int
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Chromium on about:blank in its own session, logging to a file beside the profile."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    log = open(profile_dir.parent / f"{profile_dir.name}-chromium.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [chromium_binary(), *FLAGS, f"--user-data-dir={profile_dir}",
         f"--window-size={width},{height}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return process, log


def _write_file(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """The whole group: Chromium's renderer and GPU helpers go with it."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group
