"""The agent's DNS proxy over real sockets: answers from the name table, NXDOMAIN and other
names from a real upstream, over UDP and TCP, SERVFAIL before the table and without upstream."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from api.networking.nds.v1 import nds_pb2
from proxy.dns.server import DnsOptions, LocalDnsServer, parse_resolv_conf
from proxy.dns.testing import HOST, addresses, upstream


def name_table() -> nds_pb2.NameTable:
    table = nds_pb2.NameTable()
    table.table["external.example.test"].ips.append("10.96.1.10")
    table.table["external.example.test"].registry = "External"
    auto = table.table["db.example.test"]
    auto.ips.extend(["240.240.0.7", "2001:2::f0f0:7"])
    auto.registry = "External"
    kube = table.table["reviews.default.svc.cluster.local"]
    kube.ips.append("10.96.0.9")
    kube.registry, kube.shortname, kube.namespace = "Kubernetes", "reviews", "default"
    other = table.table["ratings.other.svc.cluster.local"]
    other.ips.append("10.96.0.11")
    other.registry, other.shortname, other.namespace = "Kubernetes", "ratings", "other"
    table.table["*.wild.test"].ips.append("10.96.2.2")
    table.table["*.wild.test"].registry = "External"
    return table


@contextlib.asynccontextmanager
async def dns_proxy(upstream_port: int | None) -> AsyncIterator[LocalDnsServer]:
    upstreams = ((HOST, upstream_port),) if upstream_port else ()
    options = DnsOptions(namespace="default", domain="default.svc.cluster.local",
                         upstreams=upstreams, search=("default.svc.cluster.local",),
                         host=HOST, port=0, upstream_timeout=1.0)  # fmt: skip
    server = LocalDnsServer(options=options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def ask(
    server: LocalDnsServer, name: str, rdtype: str = "A", *, tcp: bool = False
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    host, port = server.address
    if tcp:
        return await dns.asyncquery.tcp(query, host, port=port, timeout=5)
    return await dns.asyncquery.udp(query, host, port=port, timeout=5)


def test_mesh_hosts_are_answered_here_over_udp_and_tcp() -> None:
    async def main() -> None:
        async with upstream() as (resolver, port), dns_proxy(port) as server:
            server.update_table(name_table())
            for tcp in (False, True):
                answer = await ask(server, "external.example.test", tcp=tcp)
                assert answer.rcode() == dns.rcode.NOERROR
                assert answer.flags & dns.flags.AA
                assert addresses(answer) == ["10.96.1.10"]
            assert addresses(await ask(server, "db.example.test", "AAAA")) == ["2001:2::f0f0:7"]
            # Known, but no IPv6 address: NOERROR and no answer, not NXDOMAIN.
            none = await ask(server, "external.example.test", "AAAA")
            assert none.rcode() == dns.rcode.NOERROR
            assert none.answer == []
            # A Kubernetes Service by its short names; another namespace's without the bare one.
            for name in ("reviews", "reviews.default", "reviews.default.svc",
                         "reviews.default.svc.cluster.local", "ratings.other"):  # fmt: skip
                assert addresses(await ask(server, name)) != [], name
            assert addresses(await ask(server, "anything.wild.test")) == ["10.96.2.2"]
            # What the app's resolver asks first (ndots:5): a CNAME to the host, and its A.
            first = await ask(server, "external.example.test.default.svc.cluster.local")
            assert [r.rdtype for r in first.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
            assert addresses(first)[-1] == "10.96.1.10"
            assert resolver.questions == []
            assert server.forwarded == 0

    asyncio.run(main())


def test_other_names_go_upstream_and_nxdomain_comes_back() -> None:
    async def main() -> None:
        async with upstream() as (resolver, port), dns_proxy(port) as server:
            server.update_table(name_table())
            for tcp in (False, True):
                assert addresses(await ask(server, "upstream.test", tcp=tcp)) == ["192.0.2.7"]
                missing = await ask(server, "nowhere.test", tcp=tcp)
                assert missing.rcode() == dns.rcode.NXDOMAIN
            # `ratings` alone is another namespace's Service: not ours, so upstream's answer.
            assert (await ask(server, "ratings")).rcode() == dns.rcode.NXDOMAIN
            assert "ratings." in resolver.questions
            assert server.forwarded == 5
            # Too big for UDP: truncated, and whole over TCP.
            big = await ask(server, "big.upstream.test", "TXT")
            assert big.flags & dns.flags.TC
            assert big.answer == []
            whole = await ask(server, "big.upstream.test", "TXT", tcp=True)
            assert len(addresses(whole)) == 60

    asyncio.run(main())


def test_servfail_before_the_table_and_without_an_upstream() -> None:
    async def main() -> None:
        async with dns_proxy(None) as server:
            assert not server.ready
            assert (await ask(server, "external.example.test")).rcode() == dns.rcode.SERVFAIL
            server.update_table(name_table())
            assert server.ready
            assert addresses(await ask(server, "external.example.test")) == ["10.96.1.10"]
            assert (await ask(server, "upstream.test", tcp=True)).rcode() == dns.rcode.SERVFAIL

    asyncio.run(main())


def test_garbage_is_dropped_and_the_server_keeps_answering() -> None:
    async def main() -> None:
        async with dns_proxy(None) as server:
            server.update_table(name_table())
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                raw.sendto(b"\x00\x01garbage", server.address)
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(struct.pack("!H", 3) + b"bad")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no reply
            writer.close()
            assert addresses(await ask(server, "external.example.test")) == ["10.96.1.10"]

    asyncio.run(main())


def test_resolv_conf() -> None:
    text = "# the kubelet's\nsearch a.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.1\n" \
           "nameserver 10.0.0.1\noptions ndots:5\nnameserver 10.0.0.2 ; x\n"  # fmt: skip
    assert parse_resolv_conf(text) == (
        (("10.0.0.1", 53), ("10.0.0.2", 53)), ("a.svc.cluster.local", "svc.cluster.local"))  # fmt: skip
