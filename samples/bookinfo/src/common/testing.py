"""Test support for the Bookinfo services: real service processes and recording HTTP servers.

`start_service` runs a service's script exactly as a user would (`python <svc>.py --port 0`),
on loopback, and reads the port it bound from its log. `RecordingServer` is an in-process
aiohttp server that records every request (method, raw target, Host, headers) and answers
from a function: it stands in for an upstream, or for the sidecar acting as an HTTP proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

SRC_DIR = Path(__file__).absolute().parents[1]
ROOT = SRC_DIR.parents[2]  # the repository (or Bazel's runfiles tree) holding samples/
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0

_LISTENING = re.compile(r"listening on (http://\S+)")
# Inherited settings that would change where a service under test sends its calls.
_SCRUBBED = re.compile(
    r"(?i)^(http_proxy|https_proxy|all_proxy|no_proxy|services_domain|service_version|"
    r"enable_ratings|star_color|pod_name|cluster_name|[a-z]+_hostname|[a-z]+_service_port)$"
)


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment minus proxy and Bookinfo settings, plus `extra`."""
    env = {name: value for name, value in os.environ.items() if not _SCRUBBED.match(name)}
    # The services run as modules of the repository (`python -m samples.bookinfo...`).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def upstream_env(service: str, url: URL) -> dict[str, str]:
    """The variables that point a service's calls to `service` at `url` (host and port)."""
    assert url.host is not None
    assert url.port is not None
    prefix = service.upper()
    return {f"{prefix}_HOSTNAME": url.host, f"{prefix}_SERVICE_PORT": str(url.port)}


@dataclass
class ServiceProcess:
    """One running service script; `url` is where it listens once `wait_ready` returned."""

    service: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: URL = field(default_factory=URL)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> URL:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log_text())
            if found:
                self.url = URL(found.group(1))
                return self.url
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.service} exited with {self.process.returncode}:\n{self.log_text()}"
                )
            time.sleep(0.05)
        raise TimeoutError(f"{self.service} did not listen within {timeout}s:\n{self.log_text()}")

    def wait_for_log(self, text: str, timeout: float = STARTUP_TIMEOUT_SECONDS) -> str:
        """The first log line containing `text`, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text().splitlines():
                if text in line:
                    return line
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.service} never logged {text!r}:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then SIGKILL if it outstays `timeout`; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode


def service_module(service: str) -> str:
    return f"samples.bookinfo.src.{service}.{service}"


def start_process(
    argv: list[str], *, name: str, log_dir: Path, env: Mapping[str, str] | None = None
) -> ServiceProcess:
    """Start a process that logs `listening on http://...` and wait until it does."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=service_env(env),
        )
    running = ServiceProcess(service=name, process=process, log_path=log_path)
    try:
        running.wait_ready()
    except BaseException:
        running.stop()
        raise
    return running


def start_service(
    service: str, *, log_dir: Path, env: Mapping[str, str] | None = None, name: str = ""
) -> ServiceProcess:
    """Start `python -m <service's module> --address 127.0.0.1 --port 0`; wait until it listens.

    `name` tells apart several processes of one service (reviews v1, v2, v3) in `log_dir`.
    """
    argv = [sys.executable, "-m", service_module(service), "--address", LOOPBACK, "--port", "0"]
    return start_process(argv, name=name or service, log_dir=log_dir, env=env)


@contextlib.contextmanager
def running_service(
    service: str, *, log_dir: Path, env: Mapping[str, str] | None = None, name: str = ""
) -> Iterator[ServiceProcess]:
    running = start_service(service, log_dir=log_dir, env=env, name=name)
    try:
        yield running
    finally:
        running.stop()


@contextlib.asynccontextmanager
async def serving(
    service: str, *, log_dir: Path, env: Mapping[str, str] | None = None, name: str = ""
) -> AsyncIterator[ServiceProcess]:
    """`running_service` for async tests: the event loop keeps serving while the process starts."""
    running = await asyncio.to_thread(start_service, service, log_dir=log_dir, env=env, name=name)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    # The request target as sent: a path, or an absolute URI when we are someone's proxy.
    target: str
    host: str
    # Lower-cased names.
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return URL(self.target).path


Responder = Callable[[RecordedRequest], web.Response]


def not_found(request: RecordedRequest) -> web.Response:
    return web.json_response({"error": f"no route for {request.target}"}, status=404)


def json_routes(routes: Mapping[str, Any]) -> Responder:
    """Answer 200 with the JSON of the first route whose path prefix the request's path has."""

    def respond(request: RecordedRequest) -> web.Response:
        for prefix, body in routes.items():
            if request.path.startswith(prefix):
                return web.json_response(body)
        return not_found(request)

    return respond


class RecordingServer:
    """A loopback HTTP server recording each request and answering through `respond`."""

    def __init__(self, respond: Responder = not_found) -> None:
        self.respond = respond
        self.requests: list[RecordedRequest] = []
        self._runner = web.ServerRunner(web.Server(self._handle))
        self.url = URL()

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        recorded = RecordedRequest(
            method=request.method,
            target=request.raw_path,
            host=request.headers.get("Host", ""),
            headers={name.lower(): value for name, value in request.headers.items()},
        )
        self.requests.append(recorded)
        return self.respond(recorded)

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    async def __aenter__(self) -> RecordingServer:
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = URL.build(scheme="http", host=host, port=port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._runner.cleanup()


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


async def fetch(
    url: URL | str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
) -> HttpResult:
    """One request straight to `url` (never through a proxy), redirects not followed."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with (
        aiohttp.ClientSession(trust_env=False, timeout=timeout) as session,
        session.request(
            method, url, headers=dict(headers or {}), data=data, allow_redirects=False
        ) as response,
    ):
        return HttpResult(
            status=response.status,
            headers=response.headers.copy(),
            text=await response.text(),
        )
