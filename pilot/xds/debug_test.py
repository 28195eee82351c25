"""The xDS debug endpoints over real HTTP: syncz, adsz, config_dump."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import test_utils, web
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from pilot.xds.debug import debug_routes
from pilot.xds.proxy import Proxy
from pilot.xds.server import XdsServer
from pilot.xds.testing import TEST_NODE_ID, node, run_async
from pkg.xds import resources as res
from pkg.xds.resources import Resource
from pkg.xds.testing import XdsDriver


def generate(proxy: Proxy, type_url: str, names: Sequence[str]) -> list[Resource]:
    if type_url == res.CLUSTER:
        return [
            Resource("outbound|9080||reviews", cluster_pb2.Cluster(name="outbound|9080||reviews"))
        ]
    if type_url == res.ENDPOINT:
        return [Resource(n, endpoint_pb2.ClusterLoadAssignment(cluster_name=n)) for n in names]
    return []


async def client_for(xds: XdsServer) -> test_utils.TestClient:
    app = web.Application()
    app.add_routes(debug_routes(xds))
    client = test_utils.TestClient(test_utils.TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@run_async
async def test_syncz_adsz_and_config_dump():
    xds = XdsServer(generate)
    client = await client_for(xds)
    try:
        async with XdsDriver.memory(xds, node()) as ads:
            await ads.request_response_ack(res.CLUSTER)
            eds = await ads.request_response_ack(res.ENDPOINT, ["outbound|9080||reviews"])
            await ads.request(res.ROUTE, ["9080"])
            rds = await ads.expect_response(res.ROUTE)
            await ads.nack(rds, "route 9080: invalid")
            await ads.request(res.LISTENER)  # its answer proves the NACK was processed
            await ads.expect_response(res.LISTENER)

            response = await client.get("/debug/syncz")
            assert response.status == 200
            syncz = await response.json()
            (proxy,) = syncz["proxies"]
            assert (proxy["node_id"], proxy["pod"], proxy["namespace"]) == (
                TEST_NODE_ID,
                "test",
                "default",
            )
            assert proxy["connected_since"]
            types = proxy["types"]
            assert [types[t]["state"] for t in ("CDS", "EDS", "LDS", "RDS")] == [
                "SYNCED",
                "SYNCED",
                "STALE",
                "NACKED",
            ]
            assert types["EDS"]["version_sent"] == types["EDS"]["version_acked"] == eds.version_info
            assert types["EDS"]["nonce_sent"] == eds.nonce
            assert types["RDS"]["last_nack_message"] == "route 9080: invalid"
            assert syncz["counters"]["nacks"] == 1

            response = await client.get("/debug/adsz")
            adsz = await response.json()
            assert adsz["total"] == 1
            assert adsz["connections"][0]["watches"] == {
                "CDS": ["*"],
                "LDS": ["*"],
                "EDS": ["outbound|9080||reviews"],
                "RDS": ["9080"],
            }

            response = await client.get("/debug/config_dump", params={"proxyID": "test.default"})
            assert response.status == 200
            dump = await response.json()
            assert dump["node_id"] == TEST_NODE_ID
            cds = dump["configs"]["CDS"]
            assert cds["type_url"] == res.CLUSTER
            assert cds["state"] == "SYNCED"
            assert cds["resources"] == [
                {"name": "outbound|9080||reviews", "resource": {"name": "outbound|9080||reviews"}}
            ]
            assert dump["configs"]["EDS"]["resources"][0]["resource"] == {
                "cluster_name": "outbound|9080||reviews"
            }

            missing = await client.get("/debug/config_dump", params={"proxyID": "nope.default"})
            assert missing.status == 404
            assert (await client.get("/debug/config_dump")).status == 400
    finally:
        await client.close()
