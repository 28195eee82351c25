"""Running a real config store in tests: in a thread (for sync tests) or as its own process.

Both listen on an ephemeral loopback port and stop (or are killed) by their owner; every wait
is bounded.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
from types import TracebackType

from pilot.configstore.server import ConfigStoreServer, Options

ROOT = pathlib.Path(__file__).absolute().parents[2]
MAIN = ROOT / "pilot" / "configstore" / "main.py"
_READY = re.compile(r"ready: serving (http://\S+)")


class StoreThread:
    """A store served by its own event loop in a background thread; `with StoreThread(db) as s`."""

    def __init__(self, db: str | pathlib.Path, *, history: int = 10_000) -> None:
        self._options = Options(address="127.0.0.1", port=0, db=db, history=history)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: ConfigStoreServer | None = None
        self.url = ""

    def start(self, timeout: float = 10.0) -> StoreThread:
        self._thread.start()
        self._server = ConfigStoreServer(options=self._options)
        asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(timeout)
        self.url = self._server.url
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(timeout)
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()

    def __enter__(self) -> StoreThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class StoreProcess:
    """`python pilot/configstore/main.py` as a child process, its stderr collected."""

    def __init__(self, db: str | pathlib.Path, *, extra_args: tuple[str, ...] = ()) -> None:
        self._args = [
            sys.executable,
            str(MAIN),
            "--address",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            str(db),
            *extra_args,
        ]
        self._process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.url = ""

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "not started"
        return self._process

    @property
    def log(self) -> str:
        return "".join(self._lines)

    def start(self, timeout: float = 20.0) -> StoreProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            self._args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the config store did not start:\n{self.log}")
        return self

    def _read(self) -> None:
        # Drains stderr for the child's whole life, so it never blocks on a full pipe.
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self._lines.append(line)
            match = _READY.search(line)
            if match and not self._ready.is_set():
                self.url = match.group(1)
                self._ready.set()

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, and the exit code once the process has shut down."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._join_reader()
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as in a crash or a power cut."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._join_reader()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> StoreProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
