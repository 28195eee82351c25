"""Pilot's xDS debug endpoints (mounted by the caller on the 15014 HTTP server).

- `GET /debug/syncz`: per proxy and type, versions and nonces sent and acknowledged, NACKs,
  SYNCED/STALE/NACKED (what `istioctl proxy-status` prints), plus server counters.
- `GET /debug/adsz`: the open streams and what each subscribed to.
- `GET /debug/config_dump?proxyID=<pod>.<namespace>`: what was last sent to that proxy.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from google.protobuf import json_format

from pilot.xds.server import XdsServer
from pkg.xds import resources as res
from pkg.xds.status import TypeStatus


def debug_routes(xds: XdsServer) -> list[web.RouteDef]:
    async def syncz(request: web.Request) -> web.Response:
        return web.json_response(xds.status())

    async def adsz(request: web.Request) -> web.Response:
        streams = []
        for status in xds.connections():
            streams.append(
                {
                    "conn_id": status.conn_id,
                    "node_id": status.node_id,
                    "peer": status.peer,
                    "connected_since": status.connected_since.isoformat(),
                    "watches": {
                        res.short_name(t): s.subscribed
                        for t, s in status.types.items()
                        if s.subscribed
                    },
                }
            )
        return web.json_response({"total": len(streams), "connections": streams})

    async def config_dump(request: web.Request) -> web.Response:
        proxy_id = request.query.get("proxyID", "")
        if not proxy_id:
            raise web.HTTPBadRequest(text="missing query parameter proxyID=<pod>.<namespace>\n")
        conn = xds.connection(proxy_id)
        if conn is None:
            raise web.HTTPNotFound(text=f"no proxy {proxy_id!r} is connected\n")
        configs: dict[str, Any] = {}
        for type_url, watch in conn.state.watches.items():
            if watch.nonce_sent is None or watch.resources_sent is None:
                continue
            status = TypeStatus.of(type_url, watch)
            configs[res.short_name(type_url)] = {
                "type_url": type_url,
                "state": status.state.value,
                "version": watch.version_sent,
                "nonce": watch.nonce_sent,
                "resources": [
                    {
                        "name": r.name,
                        "resource": json_format.MessageToDict(
                            r.message, preserving_proto_field_name=True
                        ),
                    }
                    for r in watch.resources_sent
                ],
            }
        return web.json_response(
            {"node_id": conn.node.node_id, "conn_id": conn.conn_id, "configs": configs}
        )

    return [
        web.get("/debug/syncz", syncz),
        web.get("/debug/adsz", adsz),
        web.get("/debug/config_dump", config_dump),
    ]
