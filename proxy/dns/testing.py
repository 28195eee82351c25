"""Test support for DNS: a real resolver on loopback standing for one outside the mesh."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

HOST = "127.0.0.1"


class Upstream(asyncio.DatagramProtocol):
    """A resolver outside the mesh: `upstream.test` is 192.0.2.7, a long name has 60 TXT
    records (too big for UDP), everything else NXDOMAIN. UDP and TCP on one port."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.questions: list[str] = []

    @staticmethod
    def reply(wire: bytes) -> bytes:
        request = dns.message.from_wire(wire)
        response = dns.message.make_response(request)
        name = request.question[0].name.to_text()
        if name == "upstream.test.":
            response.answer = [dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.7")]
        elif name == "big.upstream.test.":
            response.answer = [dns.rrset.from_text_list(
                name, 60, "IN", "TXT", [f'"{i:02d}{"x" * 40}"' for i in range(60)])]  # fmt: skip
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.questions.append(dns.message.from_wire(data).question[0].name.to_text())
        reply = self.reply(data)
        if len(reply) > 512:
            truncated = dns.message.from_wire(data)
            response = dns.message.make_response(truncated)
            response.flags |= dns.flags.TC
            reply = response.to_wire()
        assert self.transport is not None
        self.transport.sendto(reply, addr)

    async def tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        data = await reader.readexactly(length)
        self.questions.append(dns.message.from_wire(data).question[0].name.to_text())
        reply = self.reply(data)
        writer.write(struct.pack("!H", len(reply)) + reply)
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def upstream() -> AsyncIterator[tuple[Upstream, int]]:
    protocol = Upstream()
    server = await asyncio.start_server(protocol.tcp, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: protocol, local_addr=(HOST, port)
    )
    try:
        yield protocol, port
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


def addresses(response: dns.message.Message) -> list[str]:
    return [r.to_text() for rrset in response.answer for r in rrset]
