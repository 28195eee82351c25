"""A Consul agent's HTTP API for tests: the documented behaviour, pitfalls included.

Test support only (never a product path). One node, one datacenter, served on loopback by
aiohttp so the real py-consul client and the real registry talk to it over HTTP. What it
keeps faithful, because a naive double hides exactly these (see the registry reference):
- every read carries `X-Consul-Index`, at least 1, also for an unknown service (`200 []`);
- blocking queries: `?index=N&wait=D` holds while the answer's index is still <= N, up to
  the wait plus up to wait/16 of jitter, then answers with unchanged data and index; an
  index below the current one answers at once; a malformed index or wait is a 400;
- the catalog's index moves on any service change, a service's own index only on its
  changes (its checks included);
- registration keys are read case-insensitively, snake_case too, with no Content-Type;
  registering an ID again replaces it; deregistration takes the ID and answers 404 for
  one it does not know; a check starts critical unless its definition says otherwise;
- `restore_snapshot()` moves the index backwards, as a snapshot restore does;
- `stop()` then `start()` takes the agent down and back on the same port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
from typing import Any

import durationpy
from aiohttp import web

NODE = "node-1"
DATACENTER = "dc1"
_MAX_WAIT = 600.0


@dataclasses.dataclass
class _Check:
    check_id: str
    name: str
    status: str
    service_id: str = ""
    service_name: str = ""


@dataclasses.dataclass
class _Service:
    service_id: str
    name: str
    address: str
    port: int
    tags: list[str]
    meta: dict[str, str]
    modify_index: int


class FakeConsul:
    """`await FakeConsul().start()`; `.url`, `.host`, `.port`; `await .stop()`."""

    def __init__(self, *, host: str = "127.0.0.1", node_address: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.node_address = node_address
        self.index = 1
        self._services: dict[str, _Service] = {}
        self._checks: dict[str, _Check] = {
            "serfHealth": _Check("serfHealth", "Serf Health Status", "passing")
        }
        self._service_index: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.requests: list[str] = []  # "GET /v1/catalog/services?index=3&wait=2s", in order
        self.parked = 0  # blocking queries being held right now

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/catalog/services", self._catalog_services)
        app.router.add_get("/v1/catalog/service/{name}", self._catalog_service)
        app.router.add_get("/v1/health/service/{name}", self._health_service)
        app.router.add_put("/v1/agent/service/register", self._register)
        app.router.add_put("/v1/agent/service/deregister/{id}", self._deregister)
        app.router.add_put("/v1/agent/check/{status:pass|warn|fail}/{id}", self._set_check)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Test controls, besides the HTTP API.

    async def restore_snapshot(self, index: int) -> None:
        """Moves every index back to `index`, as restoring an older snapshot does."""
        self.index = max(1, index)
        self._service_index = {name: min(i, self.index) for name, i in self._service_index.items()}
        for service in self._services.values():
            service.modify_index = min(service.modify_index, self.index)
        async with self._changed:
            self._changed.notify_all()

    async def set_check(self, check_id: str, status: str) -> None:
        await self._write(self._checks[check_id].service_name, lambda: self._set(check_id, status))

    # Reads.

    async def _catalog_services(self, request: web.Request) -> web.StreamResponse:
        def answer() -> tuple[int, Any]:
            names: dict[str, list[str]] = {"consul": []}
            for service in self._services.values():
                tags = names.setdefault(service.name, [])
                tags.extend(t for t in service.tags if t not in tags)
            return self.index, names

        return await self._blocking(request, answer)

    async def _catalog_service(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]

        def answer() -> tuple[int, Any]:
            return self._index_of(name), [self._catalog_entry(s) for s in self._instances(name)]

        return await self._blocking(request, answer)

    async def _health_service(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        passing = request.query.get("passing", None) is not None and request.query.get(
            "passing"
        ) not in ("0", "false")

        def answer() -> tuple[int, Any]:
            entries = [self._health_entry(s) for s in self._instances(name)]
            if passing:
                entries = [e for e in entries if all(c["Status"] == "passing" for c in e["Checks"])]
            return self._index_of(name), entries

        return await self._blocking(request, answer)

    async def _blocking(self, request: web.Request, answer: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        try:
            waited_for = int(request.query["index"]) if "index" in request.query else None
            wait = durationpy.from_str(request.query.get("wait", "5m")).total_seconds()
        except (ValueError, durationpy.DurationError) as error:
            return web.Response(status=400, text=f"Invalid query: {error}")
        if waited_for is not None:
            wait = min(wait, _MAX_WAIT)
            deadline = asyncio.get_running_loop().time() + wait + random.uniform(0, wait / 16)
            self.parked += 1
            try:
                async with self._changed:
                    while answer()[0] <= waited_for:
                        left = deadline - asyncio.get_running_loop().time()
                        if left <= 0:
                            break
                        try:
                            await asyncio.wait_for(self._changed.wait(), left)
                        except TimeoutError:
                            break
            finally:
                self.parked -= 1
        index, body = answer()
        return web.json_response(body, headers={"X-Consul-Index": str(max(index, 1))})

    # Writes.

    async def _register(self, request: web.Request) -> web.StreamResponse:
        try:
            raw = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.Response(status=400, text="Request decode failed")
        body = _canonical(raw)
        name = body.get("name")
        if not name:
            return web.Response(status=400, text="Missing service name")
        address = body.get("address") or ""
        if address in ("0.0.0.0", "::"):
            return web.Response(status=400, text="Invalid service address")
        service_id = body.get("id") or name
        checks = [_canonical(c) for c in (body.get("checks") or [])]
        if body.get("check"):
            checks.append(_canonical(body["check"]))

        def apply() -> None:
            self._drop_service(service_id)
            self._services[service_id] = _Service(
                service_id=service_id,
                name=name,
                address=address,
                port=int(body.get("port") or 0),
                tags=list(body.get("tags") or []),
                meta={str(k): str(v) for k, v in (body.get("meta") or {}).items()},
                modify_index=self.index,
            )
            for number, check in enumerate(checks, start=1):
                check_id = (
                    check.get("checkid")
                    or check.get("id")
                    or (
                        f"service:{service_id}"
                        if len(checks) == 1
                        else f"service:{service_id}:{number}"
                    )
                )
                self._checks[check_id] = _Check(
                    check_id=check_id,
                    name=check.get("name") or f"Service '{name}' check",
                    status=check.get("status") or "critical",
                    service_id=service_id,
                    service_name=name,
                )

        await self._write(name, apply)
        return web.Response(status=200)

    async def _deregister(self, request: web.Request) -> web.StreamResponse:
        service_id = request.match_info["id"]
        service = self._services.get(service_id)
        if service is None:
            return web.Response(
                status=404,
                text=f'Unknown service ID "{service_id}". Ensure that the service ID is passed, '
                "not the service name.",
            )
        await self._write(service.name, lambda: self._drop_service(service_id))
        return web.Response(status=200)

    async def _set_check(self, request: web.Request) -> web.StreamResponse:
        check_id = request.match_info["id"]
        if check_id not in self._checks:
            return web.Response(status=404, text=f'Unknown check ID "{check_id}"')
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}[
            request.match_info["status"]
        ]
        await self.set_check(check_id, status)
        return web.Response(status=200)

    async def _write(self, service_name: str, apply: Any) -> None:
        self.index += 1
        apply()
        self._service_index[service_name] = self.index
        async with self._changed:
            self._changed.notify_all()

    def _set(self, check_id: str, status: str) -> None:
        self._checks[check_id].status = status

    def _drop_service(self, service_id: str) -> None:
        self._services.pop(service_id, None)
        for check_id in [k for k, c in self._checks.items() if c.service_id == service_id]:
            del self._checks[check_id]

    # Shapes.

    def _instances(self, name: str) -> list[_Service]:
        return sorted(
            (s for s in self._services.values() if s.name == name), key=lambda s: s.service_id
        )

    def _index_of(self, name: str) -> int:
        return self._service_index.get(name, self.index)

    def _catalog_entry(self, service: _Service) -> dict[str, Any]:
        return {
            "ID": "5d1c5f58-0000-4000-8000-000000000001",
            "Node": NODE,
            "Address": self.node_address,
            "Datacenter": DATACENTER,
            "TaggedAddresses": {"lan": self.node_address, "wan": self.node_address},
            "NodeMeta": {"consul-network-segment": ""},
            "ServiceKind": "",
            "ServiceID": service.service_id,
            "ServiceName": service.name,
            "ServiceTags": list(service.tags),
            "ServiceAddress": service.address,
            "ServiceTaggedAddresses": {},
            "ServiceWeights": {"Passing": 1, "Warning": 1},
            "ServiceMeta": dict(service.meta),
            "ServicePort": service.port,
            "ServiceEnableTagOverride": False,
            "ServiceProxy": {"MeshGateway": {}, "Expose": {}},
            "ServiceConnect": {},
            "CreateIndex": service.modify_index,
            "ModifyIndex": service.modify_index,
        }

    def _health_entry(self, service: _Service) -> dict[str, Any]:
        checks = [self._checks["serfHealth"]] + [
            c for c in self._checks.values() if c.service_id == service.service_id
        ]
        return {
            "Node": {
                "ID": "5d1c5f58-0000-4000-8000-000000000001",
                "Node": NODE,
                "Address": self.node_address,
                "Datacenter": DATACENTER,
                "TaggedAddresses": {"lan": self.node_address, "wan": self.node_address},
                "Meta": {"consul-network-segment": ""},
            },
            "Service": {
                "ID": service.service_id,
                "Service": service.name,
                "Tags": list(service.tags),
                "Address": service.address,
                "TaggedAddresses": {},
                "Meta": dict(service.meta),
                "Port": service.port,
                "Weights": {"Passing": 1, "Warning": 1},
                "EnableTagOverride": False,
                "Proxy": {"MeshGateway": {}, "Expose": {}},
                "Connect": {},
            },
            "Checks": [
                {
                    "Node": NODE,
                    "CheckID": c.check_id,
                    "Name": c.name,
                    "Status": c.status,
                    "Notes": "",
                    "Output": "",
                    "ServiceID": c.service_id,
                    "ServiceName": c.service_name,
                    "ServiceTags": list(service.tags) if c.service_id else [],
                }
                for c in checks
            ],
        }


def _canonical(body: Any) -> dict[str, Any]:
    """Keys lower-cased with underscores dropped, as Consul decodes them (Name, name, check_id)."""
    if not isinstance(body, dict):
        return {}
    return {re.sub(r"[_-]", "", str(k)).lower(): v for k, v in body.items()}
