"""The agent's NDS stream against a real gRPC ADS server: tables applied and ACKed, pushes
followed, a bad resource NACKed with the last table kept, a restarted server found again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from google.protobuf import message

from api.networking.nds.v1 import nds_pb2
from pkg.aio.backoff import Backoff
from pkg.testing.wait import eventually
from proxy.agent.testing import FakeAds, FakeAdsOptions
from proxy.dns.nds import NAME_TABLE, NdsClient, NdsOptions

NODE = base_pb2.Node(id="sidecar~10.1.0.2~app-1.default~default.svc.cluster.local")


def table(host: str, ip: str) -> nds_pb2.NameTable:
    out = nds_pb2.NameTable()
    out.table[host].ips.append(ip)
    return out


def test_tables_are_applied_acked_and_followed() -> None:
    async def main() -> None:
        ads = FakeAds(options=FakeAdsOptions(resources={NAME_TABLE: [table("a.test", "10.0.0.1")]}))
        address = await ads.start()
        seen: list[nds_pb2.NameTable] = []
        client = NdsClient(options=NdsOptions(target=address, node=NODE), apply=seen.append)
        task = asyncio.create_task(client.run())
        try:
            await eventually(lambda: len(seen) == 1, timeout=10, what="the first table")
            assert list(seen[0].table["a.test"].ips) == ["10.0.0.1"]
            first, *_ = ads.requests_of(NAME_TABLE)
            assert first.node.id == NODE.id
            assert not first.resource_names
            await eventually(lambda: len(ads.requests_of(NAME_TABLE)) == 2, timeout=10, what="ACK")
            ack = ads.requests_of(NAME_TABLE)[1]
            assert (ack.version_info, ack.response_nonce) == ("1", "1")
            assert not ack.HasField("error_detail")
            ads.set_resources(NAME_TABLE, [table("b.test", "10.0.0.2")])
            await eventually(lambda: len(seen) == 2, timeout=10, what="the pushed table")
            assert set(seen[1].table) == {"b.test"}
            # Not a NameTable: NACKed with the last good version, nothing applied.
            ads.set_resources(NAME_TABLE, [listener_pb2.Listener(name="x")])
            await eventually(lambda: len(ads.requests_of(NAME_TABLE)) == 4, timeout=10, what="NACK")
            nack = ads.requests_of(NAME_TABLE)[3]
            assert nack.version_info == "2"
            assert "NameTable" in nack.error_detail.message
            assert len(seen) == 2
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await ads.stop()

    asyncio.run(main())


def test_a_restarted_server_is_found_again() -> None:
    async def main() -> None:
        first = FakeAds(
            options=FakeAdsOptions(resources={NAME_TABLE: [table("a.test", "10.0.0.1")]})
        )
        address = await first.start()
        port = int(address.rsplit(":", 1)[1])
        seen: list[nds_pb2.NameTable] = []
        options = NdsOptions(target=address, node=NODE, backoff=Backoff(0.05, 0.2))
        task = asyncio.create_task(NdsClient(options=options, apply=seen.append).run())
        second = None
        try:
            await eventually(lambda: len(seen) == 1, timeout=10, what="the first table")
            await first.stop()
            resources: dict[str, Sequence[message.Message]] = {
                NAME_TABLE: [table("b.test", "10.0.0.2")]
            }
            second = FakeAds(options=FakeAdsOptions(port=port, resources=resources))
            await second.start()
            await eventually(lambda: len(seen) == 2, timeout=15, what="the table after a restart")
            assert set(seen[1].table) == {"b.test"}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if second is not None:
                await second.stop()

    asyncio.run(main())
