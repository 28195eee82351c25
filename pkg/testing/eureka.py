"""A Eureka server's REST API for tests: the documented behaviour, pitfalls included.

Test support only (never a product path). Served on loopback by aiohttp under `/eureka/`
(Spring Cloud's prefix; the client is given the same), so the real py-eureka-client and the
real registry talk to it over HTTP. Kept faithful where a naive double misleads:
- XML unless `Accept` contains `json` (py-eureka-client sends none and parses only XML);
  JSON ports are `{"$": 9080, "@enabled": "true"}` with the flag as a string;
- application names upper-cased, instance ids percent-decoded in paths;
- register 204 (400 for a missing id, host or app, or an app that is not the path's),
  heartbeat 200 or 404 for an unknown instance, cancel 200/404, status overrides;
- every status is listed in full reads (filtering to UP is the reader's job);
- `/apps/delta` holds only what changed in the retention window, each with its actionType,
  DELETED ones included, repeated on every read inside the window; its `apps__hashcode`
  covers the whole registry and `versions__delta` moves on each change; 403 when deltas are
  disabled;
- ETag on full reads and 304 for a matching `If-None-Match`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from aiohttp import web

PREFIX = "/eureka"
_DATA_CENTER = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
_EMPTY_MAP = "java.util.Collections$EmptyMap"


@dataclasses.dataclass
class _Change:
    at: float
    action: str
    instance: dict[str, Any]


class FakeEureka:
    """`await FakeEureka().start()`; `.url` is the client's prefix; `await .stop()`."""

    def __init__(self, *, host: str = "127.0.0.1", retention: float = 180.0) -> None:
        self.host = host
        self.port = 0
        self.retention = retention
        self.disable_delta = False
        self.apps: dict[str, dict[str, dict[str, Any]]] = {}  # APP -> instanceId -> instance
        self.versions_delta = 0
        self._changes: list[_Change] = []
        self._runner: web.AppRunner | None = None
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PREFIX}/"

    async def start(self) -> None:
        app = web.Application()
        r = app.router
        r.add_get(PREFIX + "/apps", self._full)
        r.add_get(PREFIX + "/apps/", self._full)
        r.add_get(PREFIX + "/apps/delta", self._delta)
        r.add_get(PREFIX + "/apps/{app}", self._one_app)
        r.add_post(PREFIX + "/apps/{app}", self._register)
        r.add_put(PREFIX + "/apps/{app}/{id}", self._heartbeat)
        r.add_delete(PREFIX + "/apps/{app}/{id}", self._cancel)
        r.add_put(PREFIX + "/apps/{app}/{id}/status", self._override)
        r.add_delete(PREFIX + "/apps/{app}/{id}/status", self._remove_override)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def set_status(self, app: str, instance_id: str, status: str) -> None:
        """As an instance's own status update (or an operator's override) does."""
        instance = self.apps[app.upper()][instance_id]
        instance["status"] = status
        self._changed("MODIFIED", instance)

    # Reads.

    async def _full(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        body, content_type = self._encode(request, self._applications(self._all()))
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, content_type=content_type, headers={"ETag": etag})

    async def _delta(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        if self.disable_delta:
            return web.Response(status=403)
        cutoff = time.monotonic() - self.retention
        self._changes = [c for c in self._changes if c.at >= cutoff]
        recent = [dict(c.instance, actionType=c.action) for c in self._changes]
        body, content_type = self._encode(request, self._applications(recent))
        return web.Response(body=body, content_type=content_type)

    async def _one_app(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["app"].upper()
        if name not in self.apps:
            return web.Response(status=404)
        doc = {"name": name, "instance": list(self.apps[name].values())}
        if "json" in request.headers.get("Accept", ""):
            return web.json_response({"application": doc})
        return web.Response(body=ET.tostring(_application_xml(doc)), content_type="application/xml")

    # Writes.

    async def _register(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["app"].upper()
        try:
            instance = dict(json.loads(await request.read())["instance"])
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="Malformed instance")
        for field, message in (
            ("instanceId", "Missing instanceId"),
            ("hostName", "Missing hostname"),
            ("app", "Missing appName"),
        ):
            if not instance.get(field):
                return web.Response(status=400, text=message)
        if str(instance["app"]).upper() != name:
            return web.Response(
                status=400, text=f"Mismatched appName, expecting {name} but was {instance['app']}"
            )
        instance["app"] = name
        instance.setdefault("status", "UP")
        known = instance["instanceId"] in self.apps.get(name, {})
        self.apps.setdefault(name, {})[instance["instanceId"]] = instance
        self._changed("MODIFIED" if known else "ADDED", instance)
        return web.Response(status=204)

    async def _heartbeat(self, request: web.Request) -> web.StreamResponse:
        # A renewal extends the lease; it never changes the status (a status override, e.g.
        # an operator's DOWN, stays until removed), as Eureka's renewLease does.
        if self._find(request) is None:
            return web.Response(status=404)
        return web.Response(status=200)

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        instance = self._find(request)
        if instance is None:
            return web.Response(status=404)
        del self.apps[instance["app"]][instance["instanceId"]]
        if not self.apps[instance["app"]]:
            del self.apps[instance["app"]]
        self._changed("DELETED", instance)
        return web.Response(status=200)

    async def _override(self, request: web.Request) -> web.StreamResponse:
        instance = self._find(request)
        if instance is None:
            return web.Response(status=404)
        instance["status"] = instance["overriddenstatus"] = request.query.get("value", "UNKNOWN")
        self._changed("MODIFIED", instance)
        return web.Response(status=200)

    async def _remove_override(self, request: web.Request) -> web.StreamResponse:
        instance = self._find(request)
        if instance is None:
            return web.Response(status=404)
        instance["overriddenstatus"] = "UNKNOWN"
        instance["status"] = request.query.get("value", "UP")
        self._changed("MODIFIED", instance)
        return web.Response(status=200)

    def _find(self, request: web.Request) -> dict[str, Any] | None:
        app = self.apps.get(request.match_info["app"].upper(), {})
        return app.get(request.match_info["id"])

    def _changed(self, action: str, instance: dict[str, Any]) -> None:
        self.versions_delta += 1
        instance["lastDirtyTimestamp"] = str(int(time.time() * 1000))
        self._changes.append(_Change(time.monotonic(), action, dict(instance)))

    # Shapes.

    def _all(self) -> list[dict[str, Any]]:
        return [i for app in self.apps.values() for i in app.values()]

    def _applications(self, instances: list[dict[str, Any]]) -> dict[str, Any]:
        by_app: dict[str, list[dict[str, Any]]] = {}
        for instance in instances:
            by_app.setdefault(instance["app"], []).append(instance)
        return {
            "versions__delta": str(self.versions_delta),
            "apps__hashcode": apps_hashcode(i.get("status", "UP") for i in self._all()),
            "application": [{"name": n, "instance": i} for n, i in sorted(by_app.items())],
        }

    def _encode(self, request: web.Request, doc: dict[str, Any]) -> tuple[bytes, str]:
        if "json" in request.headers.get("Accept", ""):
            return json.dumps({"applications": doc}).encode(), "application/json"
        root = ET.Element("applications")
        ET.SubElement(root, "versions__delta").text = doc["versions__delta"]
        ET.SubElement(root, "apps__hashcode").text = doc["apps__hashcode"]
        for application in doc["application"]:
            root.append(_application_xml(application))
        return ET.tostring(root, encoding="utf-8"), "application/xml"


def apps_hashcode(statuses: Iterable[str]) -> str:
    """Eureka's reconcile hash over the whole registry: `STATUS_count_` by status name."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return "".join(f"{status}_{count}_" for status, count in sorted(counts.items()))


def _application_xml(application: dict[str, Any]) -> ET.Element:
    node = ET.Element("application")
    ET.SubElement(node, "name").text = application["name"]
    for instance in application["instance"]:
        node.append(_instance_xml(instance))
    return node


def _instance_xml(instance: dict[str, Any]) -> ET.Element:
    node = ET.Element("instance")
    for key in ("instanceId", "hostName", "app", "ipAddr", "status"):
        ET.SubElement(node, key).text = str(instance.get(key, ""))
    ET.SubElement(node, "overriddenstatus").text = str(
        instance.get("overriddenstatus") or instance.get("overriddenStatus") or "UNKNOWN"
    )
    for key in ("port", "securePort"):
        port = instance.get(key) or {"$": 0, "@enabled": "false"}
        element = ET.SubElement(node, key, enabled=str(port.get("@enabled", "false")).lower())
        element.text = str(port.get("$", 0))
    ET.SubElement(node, "countryId").text = str(instance.get("countryId", 1))
    center = instance.get("dataCenterInfo") or {}
    info = ET.SubElement(node, "dataCenterInfo", {"class": center.get("@class", _DATA_CENTER)})
    ET.SubElement(info, "name").text = center.get("name", "MyOwn")
    metadata = instance.get("metadata") or {}
    entries = {k: v for k, v in metadata.items() if k != "@class"}
    meta = ET.SubElement(node, "metadata", {"class": _EMPTY_MAP} if not entries else {})
    for key, value in entries.items():
        ET.SubElement(meta, key).text = str(value)
    for key in ("homePageUrl", "statusPageUrl", "healthCheckUrl", "vipAddress", "secureVipAddress"):
        ET.SubElement(node, key).text = str(instance.get(key, ""))
    ET.SubElement(node, "isCoordinatingDiscoveryServer").text = "false"
    for key in ("lastUpdatedTimestamp", "lastDirtyTimestamp"):
        ET.SubElement(node, key).text = str(instance.get(key) or int(time.time() * 1000))
    if "actionType" in instance:
        ET.SubElement(node, "actionType").text = instance["actionType"]
    return node
