"""Running a real config store in tests: in a thread (for sync tests) or as its own process,
and driving it with the real kubectl.

Both listen on an ephemeral loopback port and stop (or are killed) by their owner; every wait
is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pilot.configstore.server import ConfigStoreServer, Options
from pkg.kube.kubeconfig import write_kubeconfig
from pkg.testing import programs

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


class StoreProcess(programs.ProgramProcess):
    """`python -m pilot.configstore.main` as a child process, its stderr collected."""

    def __init__(
        self,
        db: str | pathlib.Path,
        *,
        extra_args: tuple[str, ...] = (),
        system_namespaces: bool = False,
    ) -> None:
        """`system_namespaces`: start as a cluster does, with default, kube-system and
        kube-public (off, so a test's resourceVersions count its own writes only)."""
        self.db = pathlib.Path(db)
        super().__init__(
            "the config store",
            "pilot.configstore.main",
            "--address",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            str(db),
            "--system-namespaces" if system_namespaces else "--no-system-namespaces",
            *extra_args,
            ready=_READY,
        )

    @property
    def url(self) -> str:
        return self.ready.group(1) if self.ready else ""

    def __enter__(self) -> StoreProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


class Kubectl:
    """The real kubectl against one store, with its own kubeconfig, cache and HOME in `home`.

    `run(...)` returns the finished process; with `check` (the default) a failure raises with
    kubectl's output, so a test's assertion shows what kubectl said.
    """

    def __init__(
        self,
        server: str,
        home: pathlib.Path,
        *,
        namespace: str = "default",
        kubeconfig: pathlib.Path | None = None,
    ) -> None:
        """A kubeconfig for `server` in `home`, or the given one (e.g. the launcher's)."""
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = kubeconfig or write_kubeconfig(
            home / "kubeconfig", server, namespace=namespace
        )

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        command = [
            KUBECTL,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.home / 'cache'}",
            *args,
        ]
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "KUBECONFIG": str(self.kubeconfig),
            **(env or {}),
        }
        done = subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {done.returncode}\nstdout:\n{done.stdout}\n"
                f"stderr:\n{done.stderr}"
            )
        return done


class WatchRecorder:
    """Records the events of one watch stream in a thread: `with WatchRecorder(url) as w:`.

    To show that some requests caused no event, make a real write afterwards and wait for its
    event (`wait_for`): everything recorded before it came from the requests in between.
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        self._connection = http.client.HTTPConnection(
            parsed.hostname or "127.0.0.1", parsed.port, timeout=timeout
        )
        query = f"{parsed.query}&" if parsed.query else ""
        self._path = f"{parsed.path}?{query}watch=true&timeoutSeconds={int(timeout)}"
        self._timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> WatchRecorder:
        self._connection.request("GET", self._path)
        response = self._connection.getresponse()
        if response.status != 200:
            raise AssertionError(f"watch {self._path}: {response.status} {response.read()!r}")
        self._response = response
        self._thread.start()
        return self

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            while line := self._response.readline():
                if line.strip():
                    with self._changed:
                        self.events.append(json.loads(line))
                        self._changed.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Every event up to and including the first that satisfies `predicate`."""
        deadline = time.monotonic() + self._timeout
        with self._changed:
            while True:
                for index, event in enumerate(self.events):
                    if predicate(event):
                        return list(self.events[: index + 1])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such event; got {self.events}")
                self._changed.wait(left)

    def __exit__(self, *exc: object) -> None:
        if self._connection.sock is not None:
            with contextlib.suppress(OSError):
                self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._connection.close()


def namespace_for(test_name: str) -> str:
    """A namespace of one test's own: readable, unique, a DNS label."""
    digest = hashlib.sha256(test_name.encode()).hexdigest()[:6]
    readable = re.sub(r"[^a-z0-9]+", "-", test_name.lower())[:40].strip("-")
    return f"{readable}-{digest}"


def stored_rows(db: pathlib.Path, namespace: str) -> list[tuple[str, str]]:
    """(kind, name) of what a running store's SQLite file holds for the namespace."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return connection.execute(
            "SELECT kind, name FROM objects WHERE namespace = ? ORDER BY kind, name",
            (namespace,),
        ).fetchall()
    finally:
        connection.close()
