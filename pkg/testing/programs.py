"""Starting the mesh's programs from tests the way users start them: `python -m <module>`.

pytest makes the repository root importable for itself only (its own sys.path); a child
process gets it through PYTHONPATH here. Under Bazel the root is the runfiles tree, already
on PYTHONPATH, so the same command runs there too.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Self

# Not resolve(): under Bazel this file is a symlink into the source tree, and the runfiles
# tree (where generated code lives) is the root wanted.
ROOT = pathlib.Path(__file__).absolute().parents[2]


def command(module: str, *args: str) -> list[str]:
    """`python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def environ(**extra: str) -> dict[str, str]:
    """This process's environment, `extra` added, with the repository root importable."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(paths)}


class ProgramProcess:
    """`python -m <module>` as a child process, started and stopped from a test.

    Its stderr (where the mesh's programs log) is drained by a thread for the child's whole
    life, so a chatty child never blocks on a full pipe; the process counts as started once
    a line matches `ready`, whose match the caller reads (a URL the program chose, say).
    """

    def __init__(self, name: str, module: str, *args: str, ready: re.Pattern[str]) -> None:
        self.name = name  # for messages: "the config store did not start"
        self._args = command(module, *args)
        self._ready_line = ready
        self._process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.ready: re.Match[str] | None = None

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "not started"
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return "".join(self._lines)

    def start(self, timeout: float = 20.0) -> Self:
        self._process = subprocess.Popen(
            self._args,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=environ(),
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not start:\n{self.log}")
        return self

    def _read(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        for line in stream:
            self._lines.append(line)
            match = self._ready_line.search(line)
            if match and not self._ready.is_set():
                self.ready = match
                self._ready.set()

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, and the exit code once the process has shut down (SIGKILL after
        `timeout`, and TimeoutExpired raised)."""
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
