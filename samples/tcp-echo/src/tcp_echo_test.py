"""The echo server answers each line with its prefix, on every port it is given; bad ports
are refused with the entry named."""

from __future__ import annotations

import asyncio
import pathlib
import socket
import sys

import pytest

# samples/tcp-echo is Istio's folder name, not an importable package: load the file by path.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import tcp_echo


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


async def _talk(ports: list[int]) -> list[bytes]:
    answers = []
    for port in ports:
        for _ in range(50):  # bounded: until the listener is up
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"port {port} never listened")
        writer.write(b"hello\nworld\n")
        answers += [await reader.readline(), await reader.readline()]
        writer.close()
        await writer.wait_closed()
    return answers


def test_each_line_is_answered_with_the_prefix_on_every_port() -> None:
    ports = _free_ports(2)

    async def scenario() -> list[bytes]:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(tcp_echo.serve("127.0.0.1", ports, "one", stop))
            try:
                return await _talk(ports)
            finally:
                stop.set()

    assert asyncio.run(scenario()) == [b"one hello\n", b"one world\n"] * 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9000,x", "'x' is not a port number"),
        ("0", "out of range"),
        ("9000,9000", "given twice"),
    ],
)
def test_bad_ports_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tcp_echo.parse_ports(text)


def test_ports_and_answer() -> None:
    assert tcp_echo.parse_ports("9000,9001,9002") == [9000, 9001, 9002]
    assert tcp_echo.answer("two", b"x\n") == b"two x\n"
