"""The node's DNS server forwards every question to the host's resolvers, over UDP and TCP."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib

import dns.asyncquery
import dns.message
import dns.rcode

from proxy.dns.testing import HOST, addresses, upstream
from tools.local import nodedns


def test_it_forwards_everything_to_the_resolvers_of_resolv_conf(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        async with upstream() as (resolver, port):
            resolv = tmp_path / "resolv.conf"
            resolv.write_text(f"nameserver {HOST}\n")
            server = nodedns.node_dns(HOST, resolv, port=0)
            # The test resolver is on another port than 53: point the server at it.
            server.options = dataclasses.replace(server.options, upstreams=((HOST, port),))
            await server.start()
            try:
                host, own = server.address
                for tcp in (False, True):
                    query = dns.message.make_query("upstream.test", "A")
                    ask = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
                    answer = await ask(query, host, port=own, timeout=5)
                    assert addresses(answer) == ["192.0.2.7"]
                    missing = await ask(
                        dns.message.make_query("x.test", "A"), host, port=own, timeout=5
                    )
                    assert missing.rcode() == dns.rcode.NXDOMAIN
                assert server.forwarded == 4
                assert server.answered == 0
                assert resolver.questions.count("upstream.test.") == 2
            finally:
                await server.stop()

    asyncio.run(main())


def test_the_hosts_resolv_conf_names_its_upstreams(tmp_path: pathlib.Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.255.255.53\nsearch example\n")
    server = nodedns.node_dns("10.244.0.1", resolv)
    assert server.options.upstreams == (("10.255.255.53", 53),)
    assert (server.options.host, server.options.port) == ("10.244.0.1", 53)
    assert server.ready
