"""The master end of a pseudo-terminal, read and written from asyncio (`kubectl exec -t`).

Reads and writes wait for the descriptor with the loop's reader and writer callbacks, one
operation at a time, so a process that writes faster than the client reads is held back by
the terminal's own buffer rather than queued here. A read returns b"" once nothing holds the
other end any more (Linux answers EIO then): the process and its children are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios

from pkg.kube.remotecommand import TerminalSize

EOF = b"\x04"  # what ^D types: the end of a terminal's input, in canonical mode


class Terminal:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)

    async def read(self, size: int) -> bytes:
        while True:
            try:
                return os.read(self.fd, size)
            except BlockingIOError:
                await self._ready(writing=False)
            except OSError:
                return b""  # EIO: the other end is closed

    async def write(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.fd, data) :]
            except BlockingIOError:
                await self._ready(writing=True)

    def resize(self, size: TerminalSize) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    async def _ready(self, *, writing: bool) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        (loop.add_writer if writing else loop.add_reader)(self.fd, wake)
        try:
            await ready
        finally:
            (loop.remove_writer if writing else loop.remove_reader)(self.fd)
