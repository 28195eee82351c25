"""The line writer (backlog, drops, write failures) and the file sinks."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import threading
from collections.abc import Sequence

import pytest

from mixer.adapters.stdio.sink import FileSink, LineWriter, RotatingFileSink

LOG = logging.getLogger("sink_test")


class GatedSink:
    """Records batches; each write waits for the test to open the gate."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.writing = threading.Event()
        self.closed = False
        self.fail = False

    def write(self, lines: Sequence[str]) -> None:
        self.writing.set()
        if not self.gate.wait(timeout=10):
            raise TimeoutError("the test never opened the gate")
        if self.fail:
            raise OSError("disk full")
        self.batches.append(list(lines))

    def close(self) -> None:
        self.closed = True


def test_lines_queued_while_a_write_blocks_go_out_in_the_next_batch():
    async def main() -> None:
        sink = GatedSink()
        writer = LineWriter(sink, logger=LOG, name="test")
        writer.start()
        writer.put(["a\n"])
        await asyncio.to_thread(sink.writing.wait, 10)  # the writer is stuck in write()
        writer.put(["b\n", "c\n"])  # the event loop is not: put returns at once
        writer.put(["d\n"])
        sink.gate.set()
        async with asyncio.timeout(5):
            await writer.flush()
        assert sink.batches == [["a\n"], ["b\n", "c\n", "d\n"]]
        await writer.close()
        assert sink.closed

    asyncio.run(main())


def test_a_full_backlog_drops_new_lines_and_says_so(caplog):
    async def main() -> None:
        sink = GatedSink()
        writer = LineWriter(sink, logger=LOG, name="test", max_pending=3)
        writer.start()
        writer.put(["0\n"])
        await asyncio.to_thread(sink.writing.wait, 10)
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            writer.put(["1\n", "2\n"])
            writer.put(["3\n", "4\n"])  # one fits
            writer.put(["5\n"])
        assert writer.dropped == 2
        assert caplog.text.count("dropping new ones") == 1
        sink.gate.set()
        async with asyncio.timeout(5):
            await writer.close()
        assert sink.batches == [["0\n"], ["1\n", "2\n", "3\n"]]

    asyncio.run(main())


def test_a_failed_write_is_counted_and_the_writer_carries_on(caplog):
    async def main() -> None:
        sink = GatedSink()
        sink.gate.set()
        sink.fail = True
        writer = LineWriter(sink, logger=LOG, name="test")
        writer.start()
        with caplog.at_level(logging.ERROR, logger=LOG.name):
            writer.put(["lost\n", "too\n"])
            async with asyncio.timeout(5):
                await writer.flush()
        assert writer.failed == 2
        assert "could not write 2 lines" in caplog.text
        sink.fail = False
        writer.put(["kept\n"])
        async with asyncio.timeout(5):
            await writer.close()
        assert sink.batches == [["kept\n"]]

    asyncio.run(main())


def test_close_outlives_a_cancelled_caller():
    async def main() -> None:
        sink = GatedSink()
        writer = LineWriter(sink, logger=LOG, name="test")
        writer.start()
        writer.put(["x\n"])
        await asyncio.to_thread(sink.writing.wait, 10)
        closing = asyncio.create_task(writer.close())
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        sink.gate.set()
        async with asyncio.timeout(5):
            await writer.close()  # the shielded drain finished the work
        assert sink.batches == [["x\n"]]
        assert sink.closed

    asyncio.run(main())


def test_file_sink_appends(tmp_path: pathlib.Path):
    path = tmp_path / "log"
    sink = FileSink(str(path))
    sink.write(["a\n", "b\n"])
    assert path.read_text() == "a\nb\n"  # flushed at once
    sink.write(["c\n"])
    sink.close()
    assert path.read_text() == "a\nb\nc\n"


def test_rotating_file_sink_shifts_old_files_and_keeps_at_most_max(tmp_path: pathlib.Path):
    path = tmp_path / "log"
    sink = RotatingFileSink(str(path), max_bytes=10, max_files=2, max_age=3600)
    for line in ("first-1\n", "second2\n", "third-3\n", "fourth4\n"):
        sink.write([line])
    sink.close()
    assert path.read_text() == "fourth4\n"
    assert (tmp_path / "log.1").read_text() == "third-3\n"
    assert (tmp_path / "log.2").read_text() == "second2\n"
    assert not (tmp_path / "log.3").exists()


def test_rotating_file_sink_rotates_by_age(tmp_path: pathlib.Path):
    path = tmp_path / "log"
    sink = RotatingFileSink(str(path), max_bytes=1 << 20, max_files=3, max_age=0)
    sink.write(["old\n"])
    sink.write(["new\n"])
    sink.close()
    assert path.read_text() == "new\n"
    assert (tmp_path / "log.1").read_text() == "old\n"
