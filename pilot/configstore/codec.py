"""Request bodies in and responses out, by Content-Type and Accept, as a Kubernetes API server
negotiates them for custom resources.

Bodies: `application/json` (the default when no Content-Type is sent) and `application/yaml`;
anything else is 415 with the list of what is accepted. Duplicate keys are refused (the store
decodes strictly, as `fieldValidation=Strict` does). Responses: JSON, or YAML when the client
asks only for YAML; a client that accepts neither gets 406.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import yaml
from aiohttp import web

from pilot.configstore import status

JSON = "application/json"
YAML = "application/yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
OBJECT_TYPES = (JSON, YAML)
# A real server takes no strategic merge patch for custom resources: they have no Go struct
# tags to merge lists by.
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH)
MAX_BODY = 3 * 1024 * 1024  # the API server's request body limit


def content_type(request: web.Request) -> str:
    """The body's media type without parameters; JSON when the client sent none."""
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower() or JSON


def unsupported(accepted: tuple[str, ...]) -> status.StatusError:
    return status.StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


async def read(request: web.Request, accepted: tuple[str, ...] = OBJECT_TYPES) -> Any:
    """The decoded body of a create, update or patch; a Status error when it cannot be read."""
    media = content_type(request)
    if media not in accepted:
        raise unsupported(accepted)
    raw = await request.read()
    return decode(raw, yaml_body=media in (YAML, APPLY_PATCH))


def decode(raw: bytes, *, yaml_body: bool) -> Any:
    """The body as JSON data; a 400 when it cannot be read, or nests deeper than MAX_DEPTH
    (deeper than any object the store could walk, and than Python's recursion)."""
    try:
        body = _decode(raw, yaml_body=yaml_body)
    except RecursionError:
        body = _TOO_DEEP
    if body is _TOO_DEEP or _depth_exceeds(body, MAX_DEPTH):
        raise status.bad_request(f"the request body nests deeper than {MAX_DEPTH} levels")
    return body


MAX_DEPTH = 100  # Istio's and Kubernetes' objects nest about 20 levels at most
_TOO_DEEP = object()


def _decode(raw: bytes, *, yaml_body: bool) -> Any:
    try:
        text = raw.decode()
    except UnicodeDecodeError as error:
        raise status.bad_request(f"the request body is not UTF-8: {error}") from None
    if yaml_body:
        try:
            documents = [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None]
        except yaml.YAMLError as error:
            raise status.bad_request(f"the request body is not valid YAML: {error}") from None
        if len(documents) > 1:
            raise status.bad_request("the request body must be one YAML document, not a stream")
        return documents[0] if documents else None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as error:
        raise status.bad_request(f'strict decoding error: duplicate field "{error}"') from None
    except ValueError as error:  # integers of over 4300 digits too
        raise status.bad_request(f"the request body is not valid JSON: {error}") from None


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def respond(request: web.Request, body: Any, *, code: int = 200) -> web.Response:
    """`body` in the representation the client accepts (JSON unless it asked for YAML only)."""
    if wants_yaml(request):
        text = yaml.safe_dump(body, sort_keys=False)
        return web.Response(text=text, status=code, content_type=YAML)
    return web.json_response(body, status=code)


def wants_yaml(request: web.Request) -> bool:
    accepted = [
        m.split(";", 1)[0].strip().lower() for m in request.headers.get("Accept", "").split(",")
    ]
    accepted = [m for m in accepted if m]
    if not accepted:
        return False
    for media in accepted:
        if media in (JSON, "*/*", "application/*"):
            return False
        if media == YAML:
            return True
    raise status.StatusError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: {JSON}, {YAML}",
    )


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a key twice (PyYAML keeps the last silently) and
    keeps timestamps as the strings they are in JSON (`creationTimestamp`)."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'duplicate field "{key}"', key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
