import asyncio
import logging
import os
import signal

import pytest

from pkg.aio import program


def _signal_soon(*delays: float) -> None:
    loop = asyncio.get_running_loop()
    for delay in delays:
        loop.call_later(delay, os.kill, os.getpid(), signal.SIGTERM)


def test_a_signal_asks_for_a_graceful_stop_and_the_exit_is_0():
    drained = []

    async def serve(stop: asyncio.Event) -> None:
        _signal_soon(0.05)
        async with asyncio.timeout(10):
            await stop.wait()
        drained.append(True)

    assert program.run(serve, name="test") == 0
    assert drained == [True]


def test_a_second_signal_stops_at_once_with_exit_1(caplog):
    async def serve(stop: asyncio.Event) -> None:
        _signal_soon(0.05, 0.2)
        await stop.wait()
        await asyncio.sleep(10)  # a drain that would take too long

    with caplog.at_level(logging.WARNING):
        assert program.run(serve, name="test") == 1
    assert "stopped at once by a second signal" in caplog.text


@pytest.mark.parametrize("error", [OSError("address already in use"), ValueError("bad key")])
def test_a_start_up_failure_is_one_line_and_exit_1(caplog, error):
    async def serve(stop: asyncio.Event) -> None:
        raise error

    assert program.run(serve, name="test") == 1
    assert f"test cannot start: {error}" in caplog.text
    assert "Traceback" not in caplog.text


def test_a_fatal_error_inside_a_task_group_is_told_without_its_group(caplog):
    async def serve(stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(asyncio.sleep(10))
            raise OSError("port 8080 taken")

    assert program.run(serve, name="test") == 1
    assert "test cannot start: port 8080 taken" in caplog.text


def test_a_bug_keeps_its_traceback():
    async def serve(stop: asyncio.Event) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        program.run(serve, name="test")


def test_until_cancels_the_server_once_stop_is_set():
    cleaned = []

    async def server() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        async with asyncio.timeout(10):
            await program.until(stop, server())

    asyncio.run(main())
    assert cleaned == [True]


def test_until_returns_when_the_server_does():
    async def main() -> None:
        async with asyncio.timeout(10):
            await program.until(asyncio.Event(), asyncio.sleep(0))

    asyncio.run(main())
