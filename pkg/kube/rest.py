"""The config API's REST logic, written once and without I/O (sans-IO).

Each operation is a generator: it yields the `Request`s it needs, is sent back each
`Response`, and returns its result (a `Resource`, a `ResourceList`, the outcome of an apply).
The clients only move bytes: `pkg/kube/client.py` drives operations over aiohttp for the
servers, `pkg/kube/syncclient.py` over http.client for istioctl, so paths, bodies, decoding
into typed resources and the mapping of a Status to `pkg/kube/errors` are the same for both.

Responses are judged in one place, `payload()`: the error of a non-2xx answer, the decoded
body otherwise. The Kubernetes `Warning` headers of every answer are read by `warnings()`,
which both clients call on every response.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, TypeVar

from pkg.config.kinds import KindSchema, KindSet
from pkg.config.resource import Metadata, Resource
from pkg.kube import errors

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str  # from the API root, with its query string
    body: bytes | None = None
    content_type: str = JSON
    accept: str = JSON

    def headers(self) -> dict[str, str]:
        headers = {"Accept": self.accept}
        if self.body is not None:
            headers["Content-Type"] = self.content_type
        return headers


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Sequence[tuple[str, str]] = ()  # every header line, repeated names kept


Operation = Generator[Request, Response, T]
WarningHandler = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class ResourceList:
    items: list[Resource]
    resource_version: str  # the store's version when the list was made: where a watch starts


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    resource: Resource  # the new state; for DELETED the last one, with the deletion's version


# Requests.


def item_path(schema: KindSchema, namespace: str, name: str) -> str:
    return f"{schema.collection_path(namespace)}/{urllib.parse.quote(name, safe='')}"


def _json_request(method: str, path: str, body: Any, content_type: str = JSON) -> Request:
    return Request(method, path, json.dumps(body).encode(), content_type)


def watch_request(
    schema: KindSchema,
    namespace: str | None = None,
    resource_version: str = "",
    timeout_seconds: int | None = None,
) -> Request:
    params = {"watch": "true"}
    if resource_version:
        params["resourceVersion"] = resource_version
    if timeout_seconds is not None:
        params["timeoutSeconds"] = str(timeout_seconds)
    return Request("GET", f"{schema.collection_path(namespace)}?{urllib.parse.urlencode(params)}")


# Responses.


def payload(response: Response) -> Any:
    """The decoded JSON body of a 2xx answer; raises the ApiError a non-2xx answer stands for."""
    if response.status >= 400:
        raise errors.from_response(response.status, response.body)
    if not response.body:
        return {}
    try:
        return json.loads(response.body)
    except ValueError:
        raise errors.ApiError(
            response.status, "InternalError", "the server's answer is not JSON"
        ) from None


# RFC 7234 warn-code warn-agent "warn-text": Kubernetes sends `299 - "text"`.
_WARNING = re.compile(r'\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


def warnings(response: Response) -> list[str]:
    """The texts of the answer's `Warning` headers, as kubectl prints them."""
    found = []
    for name, value in response.headers:
        if name.lower() != "warning":
            continue
        match = _WARNING.match(value)
        text = re.sub(r"\\(.)", r"\1", match.group(1)) if match else value.strip()
        if text:
            found.append(text)
    return found


class Codec:
    """Server objects to typed resources.

    By default through the shared loader, so what a server (Pilot, Mixer) acts on is
    validated, and an object that no longer validates (version skew) is refused. With
    `validate=False` the server's word is taken, as kubectl takes it: a tool that shows what
    the store holds shows every object that parses, and skips loading the validators.
    """

    def __init__(self, kinds: KindSet, source: str, *, validate: bool = True) -> None:
        self.kinds = kinds
        self.source = source
        self.validate = validate

    def resource(self, schema: KindSchema, data: Any) -> Resource:
        """A server object as a typed resource; raises loader.LoadError (or, not validating,
        errors.ApiError) if it does not load."""
        if self.validate:
            from pkg.config import loader

            resource = loader.load_object(data, kinds=self.kinds, source=self.source)
        else:
            resource = _parse(self.kinds, data)
        if resource.schema != schema:
            raise errors.ApiError(
                500, "InternalError", f"asked for a {schema.kind}, got a {resource.schema.kind}"
            )
        return resource

    def item(self, schema: KindSchema, data: Any) -> Resource | None:
        """Like resource(), but an object that no longer loads (version skew) is skipped, logged."""
        skipped: tuple[type[Exception], ...] = (errors.ApiError,)
        if self.validate:
            from pkg.config.loader import LoadError

            skipped += (LoadError,)
        try:
            return self.resource(schema, data)
        except skipped as error:
            _log().warning(
                "skipping a %s from %s that does not load: %s", schema.kind, self.source, error
            )
            return None

    def resource_list(self, schema: KindSchema, data: Any) -> ResourceList:
        items = [r for r in (self.item(schema, o) for o in data.get("items") or []) if r]
        return ResourceList(items, str((data.get("metadata") or {}).get("resourceVersion", "")))

    def event(self, schema: KindSchema, line: bytes) -> WatchEvent | None:
        """One line of a watch stream; raises the error of an ERROR event."""
        if not line.strip():
            return None
        try:
            event = json.loads(line)
            kind, obj = event["type"], event["object"]
        except (ValueError, KeyError, TypeError):
            _log().warning("skipping a malformed watch event from %s: %.200r", self.source, line)
            return None
        if kind == "ERROR":
            raise errors.from_status(obj if isinstance(obj, dict) else {})
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return None  # BOOKMARK, or a type from a newer server
        resource = self.item(schema, obj)
        return WatchEvent(kind, resource) if resource is not None else None


def _parse(kinds: KindSet, data: Any) -> Resource:
    """An object as the server sent it, parsed into the kind's proto without validation."""
    from google.protobuf import json_format

    if not isinstance(data, dict):
        raise errors.ApiError(500, "InternalError", "the server sent an object that is not one")
    schema = kinds.by_kind(str(data.get("apiVersion")), str(data.get("kind")))
    if schema is None:
        raise errors.ApiError(
            500, "InternalError", f"unknown kind {data.get('kind')!r} of {data.get('apiVersion')!r}"
        )
    meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    body = None
    if schema.is_kubernetes:
        # Kubernetes' own kinds have no proto: the object's fields as they are.
        from google.protobuf import struct_pb2

        body = {k: v for k, v in data.items() if k not in ("apiVersion", "kind", "metadata")}
        spec: Any = struct_pb2.Struct()
        if isinstance(body.get("spec"), dict):
            spec.update(body["spec"])
    else:
        spec = schema.new_spec()
        try:
            json_format.ParseDict(data.get("spec") or {}, spec)
        except json_format.ParseError as error:
            raise errors.ApiError(500, "InternalError", f"spec: {error}") from None
    generation = meta.get("generation", 0)
    metadata = Metadata(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace") or ("default" if schema.namespaced else "")),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        resource_version=str(meta.get("resourceVersion", "")),
        generation=generation if isinstance(generation, int) else 0,
        creation_timestamp=str(meta.get("creationTimestamp", "")),
        uid=str(meta.get("uid", "")),
    )
    return Resource(schema=schema, metadata=metadata, spec=spec, body=body)


def _log() -> Any:
    # Imported when there is something to say: logging costs istioctl's start-up ~5 ms.
    import logging

    return logging.getLogger("pkg.kube")


class WatchStream:
    """A watch's body, fed in chunks as they arrive, out as events (one JSON object a line)."""

    def __init__(self, codec: Codec, schema: KindSchema) -> None:
        self._codec = codec
        self._schema = schema
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[WatchEvent]:
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        return [e for e in (self._codec.event(self._schema, line) for line in lines) if e]


# Operations.


def list_resources(
    codec: Codec, schema: KindSchema, namespace: str | None
) -> Operation[ResourceList]:
    """The kind's objects in one namespace, or in all when namespace is None."""
    response = yield Request("GET", schema.collection_path(namespace))
    return codec.resource_list(schema, payload(response))


def get(codec: Codec, schema: KindSchema, name: str, namespace: str) -> Operation[Resource]:
    response = yield Request("GET", item_path(schema, namespace, name))
    return codec.resource(schema, payload(response))


def create(codec: Codec, resource: Resource) -> Operation[Resource]:
    schema, meta = resource.schema, resource.metadata
    request = _json_request("POST", schema.collection_path(meta.namespace), resource.to_dict())
    response = yield request
    return codec.resource(schema, payload(response))


def update(codec: Codec, resource: Resource, attempts: int = 5) -> Operation[Resource]:
    """Replaces the object (PUT); a set metadata.resource_version must still be current.

    Without one the replace is unconditional, as `kubectl replace` makes it: the current
    version is read and sent (the server refuses a PUT without one), and a write that got in
    between is overwritten on a retry.
    """
    schema, meta = resource.schema, resource.metadata
    path = item_path(schema, meta.namespace, meta.name)
    if meta.resource_version:
        response = yield _json_request("PUT", path, resource.to_dict())
        return codec.resource(schema, payload(response))
    last: errors.ApiError | None = None
    for _ in range(attempts):
        current = yield from get(codec, schema, meta.name, meta.namespace)
        versioned = dataclasses.replace(meta, resource_version=current.metadata.resource_version)
        body = dataclasses.replace(resource, metadata=versioned).to_dict()
        try:
            response = yield _json_request("PUT", path, body)
            return codec.resource(schema, payload(response))
        except errors.Conflict as error:
            last = error
    assert last is not None
    raise last


def patch(
    codec: Codec, schema: KindSchema, name: str, body: dict[str, Any], namespace: str
) -> Operation[Resource]:
    """Merges `body` into the object (JSON merge patch, RFC 7386)."""
    request = _json_request("PATCH", item_path(schema, namespace, name), body, MERGE_PATCH)
    response = yield request
    return codec.resource(schema, payload(response))


def delete(schema: KindSchema, name: str, namespace: str) -> Operation[None]:
    response = yield Request("DELETE", item_path(schema, namespace, name))
    payload(response)


def apply(codec: Codec, resource: Resource, attempts: int = 5) -> Operation[str]:
    """Create, or update from the version just read (`kubectl apply` without the merge).

    Returns "created", "configured" or "unchanged"; retries when another writer got in
    between the read and the write.
    """
    schema, meta = resource.schema, resource.metadata
    last: errors.ApiError | None = None
    for _ in range(attempts):
        try:
            current = yield from get(codec, schema, meta.name, meta.namespace)
        except errors.NotFound:
            try:
                yield from create(codec, resource)
                return "created"
            except errors.AlreadyExists as error:
                last = error
                continue
        if same(current, resource):
            return "unchanged"
        versioned = dataclasses.replace(meta, resource_version=current.metadata.resource_version)
        try:
            yield from update(codec, dataclasses.replace(resource, metadata=versioned))
            return "configured"
        except (errors.Conflict, errors.NotFound) as error:
            last = error
    assert last is not None
    raise last


def same(current: Resource, wanted: Resource) -> bool:
    """Whether an apply would change nothing a user wrote (spec, labels, annotations, and a
    Kubernetes kind's other fields: a Secret's or ConfigMap's data, its type, ...)."""
    return (
        current.spec == wanted.spec
        and current.metadata.labels == wanted.metadata.labels
        and current.metadata.annotations == wanted.metadata.annotations
        and _same_fields(current.body, wanted.body)
    )


def _same_fields(current: dict[str, Any] | None, wanted: dict[str, Any] | None) -> bool:
    """The top-level fields the user wrote besides spec (compared above) and status (the
    server's), as they are stored."""
    if wanted is None:
        return True
    have = current or {}
    return all(have.get(k) == v for k, v in wanted.items() if k not in ("spec", "status"))


# Server-side printing, as kubectl asks for it: the Table, else the plain object.
TABLE = f"application/json;as=Table;v=v1;g=meta.k8s.io, {JSON}"


def raw_get(path: str, accept: str = JSON) -> Operation[Any]:
    """Any GET under the API root, decoded JSON (discovery, kinds without a schema here,
    a kind's objects or Table as the server sends them)."""
    response = yield Request("GET", path, accept=accept)
    return payload(response)


APPLY_PATCH = "application/apply-patch+yaml"


def raw_apply(path: str, obj: Any, field_manager: str) -> Operation[Any]:
    """Server-side apply of any object at its item path, taking over fields another manager
    set (`force`), as a controller owning the object does; the object as stored."""
    query = urllib.parse.urlencode({"fieldManager": field_manager, "force": "true"})
    response = yield Request("PATCH", f"{path}?{query}", json.dumps(obj).encode(), APPLY_PATCH)
    return payload(response)


def report_warnings(response: Response, handler: WarningHandler | None) -> None:
    if handler is not None:
        for text in warnings(response):
            handler(text)


def header_pairs(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in items)
