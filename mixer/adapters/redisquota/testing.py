"""A real redis-server for tests: loopback only, no persistence, killed on exit.

    with RedisServer(tmp_path) as server:      # or server.start() / server.stop()
        params = {"redisServerUrl": server.address, ...}
        server.stop()                          # Redis is gone
        server.start()                         # back, on the same port, empty

`start()` blocks until Redis answers PING (bounded); from async code run it with
`asyncio.to_thread(server.start)`.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import socket
import subprocess
import time


class RedisServerError(RuntimeError):
    pass


def redis_server_path() -> str:
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not pathlib.Path(path).exists():
        raise RedisServerError("redis-server is not installed (Debian package redis-server)")
    return path


@dataclasses.dataclass
class RedisServer:
    workdir: pathlib.Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """`host:port`, as Istio's redisServerUrl writes it."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> pathlib.Path:
        return self.workdir / f"redis-{self.port}.log"

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            raise RedisServerError("already running")
        if self.port == 0:
            self.port = _free_port(self.host)  # kept: a restart comes back on the same port
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The port may be briefly busy right after a stop (TIME_WAIT with SO_REUSEADDR is
        # fine for Redis, but a racing test may hold it): try a few times within the bound.
        deadline = time.monotonic() + timeout
        while True:
            self.process = subprocess.Popen(
                [
                    redis_server_path(),
                    "--port", str(self.port),
                    "--bind", self.host,
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.workdir),
                    "--logfile", str(self.log_path),
                    "--daemonize", "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready(deadline):
                return
            self.stop()
            if time.monotonic() >= deadline:
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise RedisServerError(f"redis-server did not start on {self.address}:\n{log}")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()  # no persistence to flush: the fastest way to "Redis went down"
        process.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, deadline: float) -> bool:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if _ping(self.host, self.port):
                return True
            time.sleep(0.02)
        return False


def _ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
