"""A test double of the Kubernetes API server, for the part of its HTTP API `istioctl install`
and `verify-install` use: discovery (/api, /apis, /apis/<group>/<version>), server-side
apply (PATCH application/apply-patch+yaml, creating or replacing the applied fields) and
GET of one object. Every object applied is validated against the Kubernetes schemas
(kubernetes-validate), a CRD also as apiextensions checks it (pkg/config/structural.py), and
refused with a 422 Status as the API server would; a CRD once applied is Established and its
group is then discovered. Test support only.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.server
import json
import threading
import urllib.parse
import uuid
from typing import Any

import kubernetes_validate
import yaml

from pkg.config import structural

KUBERNETES_VERSION = "1.30.0"
# group/version -> [(plural, kind, namespaced)]
_BUILTIN: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [("namespaces", "Namespace", False), ("serviceaccounts", "ServiceAccount", True),
           ("secrets", "Secret", True), ("configmaps", "ConfigMap", True), ("services", "Service", True),
           ("pods", "Pod", True)],
    "apps/v1": [("deployments", "Deployment", True), ("daemonsets", "DaemonSet", True)],
    "rbac.authorization.k8s.io/v1": [("clusterroles", "ClusterRole", False),
                                     ("clusterrolebindings", "ClusterRoleBinding", False),
                                     ("roles", "Role", True), ("rolebindings", "RoleBinding", True)],
    "apiextensions.k8s.io/v1": [("customresourcedefinitions", "CustomResourceDefinition", False)],
    "admissionregistration.k8s.io/v1": [("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False),
                                        ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False)],
}  # fmt: skip


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    content_type: str
    field_manager: str


class ApiServerDouble:
    def __init__(self) -> None:
        self.objects: dict[
            tuple[str, str, str], dict[str, Any]
        ] = {}  # (group/version/plural, ns, name)
        self.requests: list[Recorded] = []
        self.resources: dict[str, list[tuple[str, str, bool]]] = {
            k: list(v) for k, v in _BUILTIN.items()
        }
        self._lock = threading.Lock()
        self._version = 1
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="apiserver-double", daemon=True
        )

    def __enter__(self) -> ApiServerDouble:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def kubeconfig(self) -> str:
        return yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "double",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "admin", "user": {"token": "admin-token"}}],
            "contexts": [{"name": "double", "context": {"cluster": "double", "user": "admin"}}],
        })  # fmt: skip

    def find(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        with self._lock:
            for (_, ns, object_name), obj in self.objects.items():
                if obj["kind"] == kind and object_name == name and ns == namespace:
                    return obj
        return None

    def existing(self, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
        """`find`, for an object that must be there; raises KeyError when it is not."""
        found = self.find(kind, name, namespace)
        if found is None:
            raise KeyError(f"{kind} {namespace}/{name}")
        return found

    def mark_ready(self) -> None:
        """What the controllers would report once the pods run: every workload ready."""
        with self._lock:
            for obj in self.objects.values():
                if obj["kind"] == "Deployment":
                    replicas = obj["spec"].get("replicas", 1)
                    obj["status"] = {"replicas": replicas, "readyReplicas": replicas}
                elif obj["kind"] == "DaemonSet":
                    obj["status"] = {"desiredNumberScheduled": 2, "numberReady": 2}

    # --- the API -------------------------------------------------------------------------
    def resource_of(self, group_version: str, plural: str) -> tuple[str, bool] | None:
        for name, kind, namespaced in self.resources.get(group_version, []):
            if name == plural:
                return kind, namespaced
        return None

    def apply(
        self, group_version: str, plural: str, namespace: str, name: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        found = self.resource_of(group_version, plural)
        if found is None:
            return 404, _status(
                404, "NotFound", f"the server could not find the requested resource ({plural})"
            )
        kind, namespaced = found
        if body.get("kind") != kind or body.get("apiVersion") != group_version:
            return 400, _status(
                400, "BadRequest", f"the body is a {body.get('kind')}, not a {kind}"
            )
        meta = body.get("metadata") or {}
        if meta.get("name") != name or (
            namespaced and meta.get("namespace", namespace) != namespace
        ):
            return 400, _status(
                400, "BadRequest", "the body's name and namespace must match the path"
            )
        try:
            kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            return 422, _status(422, "Invalid", f"{kind} {name!r} is invalid: {error.message}")
        if kind == "CustomResourceDefinition" and (problems := structural.crd_problems(body)):
            # What the schemas cannot say and apiextensions refuses: a schema not structural.
            return 422, _status(
                422, "Invalid", f"{kind} {name!r} is invalid: {'; '.join(problems)}"
            )
        key = (f"{group_version}/{plural}", namespace if namespaced else "", name)
        with self._lock:
            self._version += 1
            old = self.objects.get(key)
            stored = json.loads(json.dumps(body))
            stored["metadata"].update({
                "uid": old["metadata"]["uid"] if old else str(uuid.uuid4()),
                "resourceVersion": str(self._version),
                "creationTimestamp": old["metadata"]["creationTimestamp"] if old else
                datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            })  # fmt: skip
            if namespaced:
                stored["metadata"]["namespace"] = namespace
            if kind == "CustomResourceDefinition":
                stored["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
                spec = stored["spec"]
                for version in spec["versions"]:
                    entries = self.resources.setdefault(f"{spec['group']}/{version['name']}", [])
                    entry = (
                        spec["names"]["plural"],
                        spec["names"]["kind"],
                        spec["scope"] == "Namespaced",
                    )
                    if entry not in entries:
                        entries.append(entry)
            elif old and "status" in old:
                stored["status"] = old["status"]
            self.objects[key] = stored
        return (200 if old else 201), stored

    def get(
        self, group_version: str, plural: str, namespace: str, name: str
    ) -> tuple[int, dict[str, Any]]:
        found = self.resource_of(group_version, plural)
        if found is None:
            return 404, _status(
                404, "NotFound", f"the server could not find the requested resource ({plural})"
            )
        key = (f"{group_version}/{plural}", namespace if found[1] else "", name)
        with self._lock:
            obj = self.objects.get(key)
        if obj is None:
            return 404, _status(404, "NotFound", f'{plural} "{name}" not found')
        return 200, obj

    def list(
        self, group_version: str, plural: str, namespace: str | None
    ) -> tuple[int, dict[str, Any]]:
        """A collection (of one namespace, or all), as a `<Kind>List`."""
        found = self.resource_of(group_version, plural)
        if found is None:
            return 404, _status(
                404, "NotFound", f"the server could not find the requested resource ({plural})"
            )
        prefix = f"{group_version}/{plural}"
        with self._lock:
            items = [obj for (key, ns, _), obj in sorted(self.objects.items())
                     if key == prefix and (namespace is None or ns == namespace)]  # fmt: skip
            version = str(self._version)
        return 200, {"apiVersion": group_version, "kind": f"{found[0]}List",
                     "metadata": {"resourceVersion": version}, "items": items}  # fmt: skip

    def discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            major, minor, _ = KUBERNETES_VERSION.split(".")
            return {"major": major, "minor": minor, "gitVersion": f"v{KUBERNETES_VERSION}"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for group_version in self.resources:
                if "/" in group_version:
                    group, version = group_version.split("/")
                    groups.setdefault(group, []).append(version)
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                for g, vs in groups.items()]}  # fmt: skip
        group_version = path.removeprefix("/api/").removeprefix("/apis/")
        if group_version in self.resources and path in (
            f"/api/{group_version}",
            f"/apis/{group_version}",
        ):
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": [
                {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                for plural, kind, namespaced in self.resources[group_version]]}  # fmt: skip
        return None


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _split_list(path: str) -> tuple[str, str, str | None] | None:
    """/api/v1/plural, /api/v1/namespaces/ns/plural (or under /apis/g/v) -> (gv, plural, ns)."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) >= 2:
        gv, rest = parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    if len(rest) == 1:
        return gv, rest[0], None
    if len(rest) == 3 and rest[0] == "namespaces":
        return gv, rest[2], rest[1]
    return None


def _split(path: str) -> tuple[str, str, str, str] | None:
    """/api/v1/namespaces/ns/plural/name or /apis/g/v/plural/name -> (gv, plural, ns, name)."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"]:
        gv, rest = parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) == 4 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) != 2:
        return None
    return gv, rest[0], namespace, rest[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    api: ApiServerDouble

    def log_message(self, *_: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> tuple[str, dict[str, list[str]]]:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.api.requests.append(
            Recorded(
                self.command,
                url.path,
                self.headers.get("Content-Type", ""),
                (query.get("fieldManager") or [""])[0],
            )
        )
        return url.path, query

    def do_GET(self) -> None:
        path, _ = self._record()
        found = self.api.discovery(path)
        if found is not None:
            self._send(200, found)
            return
        parts = _split(path)
        if parts is None:
            collection = _split_list(path)
            if collection is not None:
                self._send(*self.api.list(*collection))
                return
            self._send(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
            return
        self._send(*self.api.get(*parts))

    def do_PATCH(self) -> None:
        path, _ = self._record()
        if self.headers.get("Content-Type") != "application/apply-patch+yaml":
            self._send(
                415, _status(415, "UnsupportedMediaType", "only server-side apply is served here")
            )
            return
        parts = _split(path)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = yaml.safe_load(self.rfile.read(length))
        except yaml.YAMLError as error:
            self._send(400, _status(400, "BadRequest", f"the body does not parse: {error}"))
            return
        if parts is None or not isinstance(body, dict):
            self._send(400, _status(400, "BadRequest", "not an object path, or not an object"))
            return
        self._send(*self.api.apply(*parts, body))
