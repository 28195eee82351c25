"""Where stdio lines go, and the writer that keeps writing off the event loop.

Why a writer task rather than writing in the handler: Mixer calls handlers on its event
loop, and a write to stdout blocks when whatever reads the pipe is slow (a terminal, a
log shipper); a full disk blocks file writes too. So the handler only appends encoded
lines to a bounded in-memory backlog, and one writer task per handler hands each batch to
a worker thread. Past `max_pending` lines, new lines are dropped and counted (logged
once per burst) rather than growing memory without bound. `flush()` waits for everything
queued so far; `close()` drains, then closes the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Protocol

DEFAULT_MAX_PENDING = 10_000


class Sink(Protocol):
    """Blocking output; only ever called from one worker thread at a time."""

    def write(self, lines: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class StreamSink:
    """stdout or stderr, looked up at each write so a replaced sys.stdout is honoured."""

    def __init__(self, name: str) -> None:
        if name not in ("stdout", "stderr"):
            raise ValueError(f"not a standard stream: {name}")
        self._name = name

    def write(self, lines: Sequence[str]) -> None:
        stream: IO[str] = getattr(sys, self._name)
        stream.write("".join(lines))
        stream.flush()

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):  # already closed by its owner
            getattr(sys, self._name).flush()


class FileSink:
    """A file, appended to (created if missing)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, lines: Sequence[str]) -> None:
        self._file.write("".join(lines))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RotatingFileSink:
    """A file renamed to `path.1` (older ones shifted up, the oldest beyond `max_files`
    removed) when it would pass `max_bytes` or is older than `max_age` seconds."""

    def __init__(self, path: str, *, max_bytes: int, max_files: int, max_age: float) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._max_files = max_files
        self._max_age = max_age
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._opened = time.monotonic()

    def write(self, lines: Sequence[str]) -> None:
        data = "".join(lines)
        size = self._file.tell()
        too_big = size > 0 and size + len(data.encode("utf-8")) > self._max_bytes
        if too_big or time.monotonic() - self._opened > self._max_age:
            self._rotate()
        self._file.write(data)
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        oldest = f"{self._path}.{self._max_files}"
        if os.path.exists(oldest):
            os.remove(oldest)
        for index in range(self._max_files - 1, 0, -1):
            older = f"{self._path}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{self._path}.{index + 1}")
        os.replace(self._path, f"{self._path}.1")
        self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
        self._opened = time.monotonic()


class LineWriter:
    """A bounded backlog of lines and the one task that writes it to a sink."""

    def __init__(
        self,
        sink: Sink,
        *,
        logger: logging.Logger,
        name: str,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._sink = sink
        self._logger = logger
        self._name = name
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._dropping = False  # in a burst of dropped lines (warned once per burst)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # lines refused because the backlog was full
        self.failed = 0  # lines lost to write errors

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stdio writer {self._name}")

    def put(self, lines: Sequence[str]) -> None:
        """Queue lines; never blocks."""
        if self._closing:
            raise RuntimeError(f"stdio writer {self._name} is closed")
        room = self._max_pending - len(self._pending)
        if len(lines) > room:
            if not self._dropping:
                self._dropping = True
                self._logger.warning(
                    "stdio %s: %d lines waiting to be written; dropping new ones",
                    self._name,
                    len(self._pending),
                )
            self.dropped += len(lines) - max(room, 0)
            lines = lines[: max(room, 0)]
        if lines:
            self._pending.extend(lines)
            self._idle.clear()
            self._wake.set()

    async def flush(self) -> None:
        """Wait until every line queued so far has been written (or failed)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Write what is queued, close the sink, end the task. Safe to call twice."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            # Shielded: if our caller gives up, the writer still drains and closes the sink.
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(self._sink.write, batch)
                except Exception:  # a log sink must outlive a full disk or a closed pipe
                    self.failed += len(batch)
                    self._logger.exception(
                        "stdio %s: could not write %d lines", self._name, len(batch)
                    )
            self._dropping = False
            self._idle.set()
            if self._closing:
                try:
                    await asyncio.to_thread(self._sink.close)
                except Exception:
                    self._logger.exception("stdio %s: could not close its output", self._name)
                return
