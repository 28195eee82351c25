"""The agent's DNS proxy (Istio's LocalDNSServer): UDP and TCP on 127.0.0.1:15053.

istio-iptables sends the app's DNS here (port 53 to a resolv.conf nameserver, REDIRECT to
15053). A question for a host of Pilot's name table (table.py) is answered here, with the
authoritative bit, as Istio's agent does; any other goes as it came to the resolv.conf
nameservers, tried in order over the protocol the app used, the first answer returned as is
(SERVFAIL when none answers in time). Until Pilot's first table arrives every question gets
SERVFAIL, so an app never caches a wrong NXDOMAIN for a mesh host. The agent's own queries
upstream leave as its uid/gid 1337, which the capture rules let through.

A UDP answer larger than the client can take (512 bytes, or its EDNS size) is sent empty
with TC set, and the client asks again over TCP. What cannot be parsed as a DNS message is
dropped (UDP) or ends the connection (TCP).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import struct

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode

from api.networking.nds.v1 import nds_pb2
from proxy.dns.table import LookupTable

log = logging.getLogger("pilot-agent.dns")

DEFAULT_ADDRESS = ("127.0.0.1", 15053)  # Istio's DefaultDNSProxyAddr: localhost:15053
_TCP_IDLE = 10.0  # seconds a TCP client may keep a connection without asking
_MAX_INFLIGHT = 256  # UDP questions being answered at once; more are dropped (a client retries)


@dataclasses.dataclass(frozen=True)
class DnsOptions:
    namespace: str
    domain: str  # the proxy's DNS domain, <ns>.svc.cluster.local
    upstreams: tuple[tuple[str, int], ...] = ()  # the resolv.conf nameservers, port 53
    search: tuple[str, ...] = ()
    host: str = DEFAULT_ADDRESS[0]
    port: int = DEFAULT_ADDRESS[1]
    upstream_timeout: float = 5.0  # seconds per upstream, Istio's DefaultUpstreamTimeout


def parse_resolv_conf(text: str) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """(nameservers as (address, 53), search domains) of a resolv.conf."""
    servers: list[tuple[str, int]] = []
    search: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append((fields[1], 53))
        elif fields and fields[0] in ("search", "domain"):
            search = fields[1:]  # the last line wins, as in glibc
    return tuple(dict.fromkeys(servers)), tuple(search)


class LocalDnsServer:
    def __init__(self, *, options: DnsOptions) -> None:
        self.options = options
        self._table: LookupTable | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.forwarded = 0  # questions sent upstream (tests and /stats read them)
        self.answered = 0  # questions answered from the table

    @property
    def ready(self) -> bool:
        """Whether Pilot's name table has arrived (Istio's IsReady)."""
        return self._table is not None

    def update_table(self, table: nds_pb2.NameTable) -> None:
        o = self.options
        self._table = LookupTable.build(
            table, namespace=o.namespace, domain=o.domain, search=o.search
        )
        log.info("DNS name table: %d hosts", len(table.table))

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port the system chose when asked for 0)."""
        if self._tcp is not None and self._tcp.sockets:
            host, port = self._tcp.sockets[0].getsockname()[:2]
            return str(host), int(port)
        return self.options.host, self.options.port

    async def start(self) -> None:
        """Listen on UDP and TCP (the same port); raises OSError if either cannot."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(
            self._serve_tcp, self.options.host, self.options.port
        )
        host, port = self.address
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port)
            )
        except OSError:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None
            raise
        self._udp = transport
        log.info("DNS proxy on %s:%d (UDP and TCP), upstream %s", host, port,
                 ", ".join(f"{h}:{p}" for h, p in self.options.upstreams) or "none")  # fmt: skip

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5.0)
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._tcp.wait_closed(), 5.0)
            self._tcp = None

    # Answering.

    async def answer(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """The reply to one query in wire format (None: not a DNS message, no reply)."""
        try:
            request = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not request.question or self._table is None:
            response = dns.message.make_response(request)
            response.set_rcode(dns.rcode.SERVFAIL)
            return _wire(response, request, tcp)
        question = request.question[0]
        found, answers = self._table.lookup(question.name.to_text(), question.rdtype)
        if found:
            self.answered += 1
            response = dns.message.make_response(request)
            response.flags |= dns.flags.AA
            response.answer = answers
            return _wire(response, request, tcp)
        self.forwarded += 1
        upstream = await self._forward(request, tcp=tcp)
        if upstream is None:
            response = dns.message.make_response(request)
            response.set_rcode(dns.rcode.SERVFAIL)
            return _wire(response, request, tcp)
        upstream.id = request.id
        return _wire(upstream, request, tcp)

    async def _forward(
        self, request: dns.message.Message, *, tcp: bool
    ) -> dns.message.Message | None:
        for host, port in self.options.upstreams:
            timeout = self.options.upstream_timeout
            try:
                if tcp:
                    return await dns.asyncquery.tcp(request, host, timeout=timeout, port=port)
                return await dns.asyncquery.udp(request, host, timeout=timeout, port=port,
                                                ignore_unexpected=True)  # fmt: skip
            except (dns.exception.DNSException, OSError, EOFError) as error:
                log.debug("upstream %s:%d: %s", host, port, error)
        return None

    def _on_datagram(self, data: bytes, peer: tuple[str, int]) -> None:
        if len(self._inflight) >= _MAX_INFLIGHT:
            return
        # A datagram arrives in a synchronous callback, so no TaskGroup can take it; the server
        # owns these tasks instead: bounded, and cancelled and awaited by stop().
        task = asyncio.get_running_loop().create_task(self._reply_udp(data, peer))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _reply_udp(self, data: bytes, peer: tuple[str, int]) -> None:
        reply = await self.answer(data, tcp=False)
        if reply is not None and self._udp is not None:
            self._udp.sendto(reply, peer)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(_TCP_IDLE):
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(length)
                reply = await self.answer(data, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _wire(response: dns.message.Message, request: dns.message.Message, tcp: bool) -> bytes:
    if tcp:
        return response.to_wire()
    limit = max(512, request.payload if request.edns >= 0 else 512)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: LocalDnsServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self._server._on_datagram(data, addr)
