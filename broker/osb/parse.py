"""Requests checked against the OSB spec and turned into typed data (model.py).

Every refusal is a 400 (or 412 for the version header) whose description says which field
of which part of the request is wrong and why. Unknown fields are ignored, as the spec
requires of receivers. JSON values are held to what the rest of the mesh can store: finite
numbers, text that is valid UTF-8, and no deeper than MAX_DEPTH.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from broker.osb import errors, model

MIN_VERSION = (2, 13)  # the spec's version when Istio's broker was written
VERSION = (2, 17)  # the newest this broker implements
MAX_DEPTH = 32
MAX_INTEGER = 2**53
_VERSION = re.compile(r"^\s*(\d{1,4})\.(\d{1,4})\s*$")


def api_version(header: str | None) -> tuple[int, int]:
    speaks = f"this broker speaks Open Service Broker API {_v(MIN_VERSION)} to 2.x ({_v(VERSION)})"
    if header is None or not header.strip():
        raise errors.PreconditionFailed(
            f"the X-Broker-API-Version header is missing; {speaks}", error="MissingVersion"
        )
    match = _VERSION.match(header)
    if not match:
        raise errors.PreconditionFailed(
            f"X-Broker-API-Version {header!r} is not MAJOR.MINOR; {speaks}", error="BadVersion"
        )
    version = (int(match.group(1)), int(match.group(2)))
    # Minor versions only add to the API; another major version is another API.
    if version[0] != VERSION[0] or version < MIN_VERSION:
        raise errors.PreconditionFailed(
            f"X-Broker-API-Version {_v(version)} is not supported; {speaks}",
            error="UnsupportedVersion",
        )
    return version


def _v(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def originating_identity(header: str | None) -> model.OriginatingIdentity | None:
    if header is None:
        return None
    where = "X-Broker-API-Originating-Identity"
    platform, _, value = header.strip().partition(" ")
    if not platform or not value.strip():
        raise errors.BadRequest(f"{where}: want '<platform> <base64 of a JSON object>'")
    try:
        decoded = json.loads(
            base64.b64decode(value.strip(), validate=True), parse_constant=_no_constant
        )
    except (binascii.Error, ValueError, RecursionError) as error:
        raise errors.BadRequest(f"{where}: the value is not base64 of JSON: {error}") from None
    if not isinstance(decoded, dict):
        raise errors.BadRequest(f"{where}: the value must be a JSON object")
    check_json(decoded, where)
    return model.OriginatingIdentity(platform=platform, value=decoded)


def json_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """The request body as a JSON object (the spec's bodies are all objects)."""
    if content_type and not _is_json(content_type):
        raise errors.BadRequest(
            f"the body must be application/json, got Content-Type {content_type!r}",
            error="UnsupportedContentType",
        )
    if not raw.strip():
        raise errors.BadRequest("the request needs a JSON object body", error="MissingBody")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except UnicodeDecodeError as error:
        raise errors.BadRequest(f"the body is not UTF-8: {error}", error="MalformedJSON") from None
    except RecursionError:
        raise errors.BadRequest("the body nests too deeply", error="MalformedJSON") from None
    except ValueError as error:
        raise errors.BadRequest(
            f"the body is not valid JSON: {error}", error="MalformedJSON"
        ) from None
    if not isinstance(body, dict):
        raise errors.BadRequest(
            f"the body must be a JSON object, got {_json_type(body)}", error="MalformedJSON"
        )
    check_json(body, "body")
    return body


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_json(value: Any, path: str, depth: int = 0) -> None:
    """Refuses what JSON allows but the config store cannot keep faithfully."""
    if depth > MAX_DEPTH:
        raise errors.BadRequest(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise errors.BadRequest(f"{path}: numbers must be finite")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        # The store keeps JSON numbers as doubles: larger integers would come back changed.
        raise errors.BadRequest(f"{path}: integers must be within ±2^53 (I-JSON)")
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path)
            check_json(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]", depth + 1)


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.BadRequest(f"{path}: text must be valid Unicode (a lone surrogate?)") from None


def _json_type(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), "null")


def _string(
    body: Mapping[str, Any], name: str, *, required: bool, where: str = "body"
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise errors.BadRequest(f"{where}.{name} is required", error="MissingField")
        return None
    if not isinstance(value, str):
        raise errors.BadRequest(f"{where}.{name} must be a string, got {_json_type(value)}")
    if not value:
        raise errors.BadRequest(f"{where}.{name} must not be empty")
    return value


def _object(body: Mapping[str, Any], name: str, where: str = "body") -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.BadRequest(f"{where}.{name} must be an object, got {_json_type(value)}")
    return value


def _maintenance_version(body: Mapping[str, Any], where: str = "body") -> str | None:
    info = _object(body, "maintenance_info", where)
    if info is None:
        return None
    return _string(info, "version", required=True, where=f"{where}.maintenance_info")


def _required(value: str | None) -> str:
    assert value is not None
    return value


def flag(query: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter: absent is false."""
    value = query.get(name)
    if value is None:
        return False
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise errors.BadRequest(f"query parameter {name} must be true or false, got {value!r}")


def query_string(query: Mapping[str, str], name: str, *, required: bool) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        if required:
            raise errors.BadRequest(f"query parameter {name} is required", error="MissingField")
        return None
    _check_text(value, f"query parameter {name}")
    return value


def provision(
    instance_id: str, body: dict[str, Any], query: Mapping[str, str], info: model.RequestInfo
) -> model.ProvisionRequest:
    return model.ProvisionRequest(
        instance_id=instance_id,
        service_id=_required(_string(body, "service_id", required=True)),
        plan_id=_required(_string(body, "plan_id", required=True)),
        organization_guid=_required(_string(body, "organization_guid", required=True)),
        space_guid=_required(_string(body, "space_guid", required=True)),
        context=_object(body, "context") or {},
        parameters=_object(body, "parameters") or {},
        maintenance_info_version=_maintenance_version(body),
        accepts_incomplete=flag(query, "accepts_incomplete"),
        info=info,
    )


def update(
    instance_id: str, body: dict[str, Any], query: Mapping[str, str], info: model.RequestInfo
) -> model.UpdateRequest:
    previous = _object(body, "previous_values") or {}
    return model.UpdateRequest(
        instance_id=instance_id,
        service_id=_required(_string(body, "service_id", required=True)),
        plan_id=_string(body, "plan_id", required=False),
        parameters=_object(body, "parameters"),
        context=_object(body, "context"),
        previous_plan_id=_string(previous, "plan_id", required=False, where="body.previous_values"),
        maintenance_info_version=_maintenance_version(body),
        accepts_incomplete=flag(query, "accepts_incomplete"),
        info=info,
    )


def deprovision(
    instance_id: str, query: Mapping[str, str], info: model.RequestInfo
) -> model.DeprovisionRequest:
    return model.DeprovisionRequest(
        instance_id=instance_id,
        service_id=_required(query_string(query, "service_id", required=True)),
        plan_id=_required(query_string(query, "plan_id", required=True)),
        accepts_incomplete=flag(query, "accepts_incomplete"),
        info=info,
    )


def bind(
    instance_id: str,
    binding_id: str,
    body: dict[str, Any],
    query: Mapping[str, str],
    info: model.RequestInfo,
) -> model.BindRequest:
    resource = _object(body, "bind_resource") or {}
    app_guid = _string(resource, "app_guid", required=False, where="body.bind_resource")
    return model.BindRequest(
        instance_id=instance_id,
        binding_id=binding_id,
        service_id=_required(_string(body, "service_id", required=True)),
        plan_id=_required(_string(body, "plan_id", required=True)),
        # bind_resource.app_guid replaces the deprecated top-level app_guid.
        app_guid=app_guid or _string(body, "app_guid", required=False),
        route=_string(resource, "route", required=False, where="body.bind_resource"),
        context=_object(body, "context") or {},
        parameters=_object(body, "parameters") or {},
        predecessor_binding_id=_string(body, "predecessor_binding_id", required=False),
        accepts_incomplete=flag(query, "accepts_incomplete"),
        info=info,
    )


def unbind(
    instance_id: str, binding_id: str, query: Mapping[str, str], info: model.RequestInfo
) -> model.UnbindRequest:
    return model.UnbindRequest(
        instance_id=instance_id,
        binding_id=binding_id,
        service_id=_required(query_string(query, "service_id", required=True)),
        plan_id=_required(query_string(query, "plan_id", required=True)),
        accepts_incomplete=flag(query, "accepts_incomplete"),
        info=info,
    )


def last_operation(
    instance_id: str, binding_id: str | None, query: Mapping[str, str]
) -> model.LastOperationRequest:
    return model.LastOperationRequest(
        instance_id=instance_id,
        binding_id=binding_id,
        service_id=query_string(query, "service_id", required=False),
        plan_id=query_string(query, "plan_id", required=False),
        operation=query_string(query, "operation", required=False),
    )
