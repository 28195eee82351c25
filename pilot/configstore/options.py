"""The options of a write, as a Kubernetes API server reads them from the query and the body.

    ?dryRun=All                      validate and answer, store nothing (create, update, patch, delete)
    ?fieldManager=NAME               who owns the fields this write sets (managedFields)
    ?force=true                      server-side apply: take fields other managers own
    DeleteOptions body               dryRun, preconditions {uid, resourceVersion}, propagationPolicy

Refusals carry Kubernetes' wording: an invalid option is a 422 on the options kind
(`CreateOptions.meta.k8s.io "" is invalid: ...`), as kubectl and the clients expect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from multidict import MultiMapping

from pilot.configstore import status

_DRY_RUN_ALL = "All"
_PROPAGATION = ("Orphan", "Background", "Foreground")
_MAX_MANAGER = 128


@dataclasses.dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""  # who takes ownership; from the query or the User-Agent
    force: bool = False  # server-side apply only
    api_version: str = ""  # the version the request was made at; managedFields record it
    subresource: str = ""  # "status" or "binding": a write through that subresource


@dataclasses.dataclass(frozen=True)
class DeleteOptions:
    dry_run: bool = False
    uid: str = ""  # preconditions: delete only this incarnation...
    resource_version: str = ""  # ...at this version
    grace_period_seconds: int | None = None  # pods: how long they get to stop; None: their own


DEFAULT = WriteOptions()
DEFAULT_DELETE = DeleteOptions()


def write_options(
    query: MultiMapping[str], user_agent: str, *, kind: str, apply: bool = False
) -> WriteOptions:
    """`kind` names the options in errors: CreateOptions, UpdateOptions or PatchOptions."""
    dry_run = _dry_run(query.getall("dryRun", []), kind)
    manager = query.get("fieldManager", "")
    if apply and not manager:
        raise _invalid(kind, "fieldManager: Required value: is required for apply patch")
    if len(manager) > _MAX_MANAGER:
        raise _invalid(kind, f"fieldManager: Too long: may not be more than {_MAX_MANAGER} bytes")
    if not manager.isprintable():
        raise _invalid(kind, "fieldManager: Invalid value: must only contain printable characters")
    force_text = query.get("force")
    if force_text is not None and not apply:
        raise _invalid(kind, "force: Forbidden: may not be specified for non-apply patch")
    return WriteOptions(
        dry_run=dry_run,
        field_manager=manager or default_manager(user_agent),
        force=_boolean(force_text, "force"),
    )


def delete_options(query: MultiMapping[str], body: Any) -> DeleteOptions:
    """Query parameters and a DeleteOptions body (kubectl sends the body) together."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise status.bad_request("the body of a DELETE must be a DeleteOptions object")
    values = list(query.getall("dryRun", []))
    from_body = body.get("dryRun") or []
    if not isinstance(from_body, list):
        raise status.bad_request("DeleteOptions.dryRun must be a list of strings")
    dry_run = _dry_run(values + from_body, "DeleteOptions")
    policy = query.get("propagationPolicy", body.get("propagationPolicy"))
    if policy is not None and policy not in _PROPAGATION:
        raise _invalid(
            "DeleteOptions",
            f'propagationPolicy: Unsupported value: "{policy}": supported values: '
            + ", ".join(f'"{p}"' for p in _PROPAGATION),
        )
    preconditions = body.get("preconditions") or {}
    if not isinstance(preconditions, Mapping):
        raise status.bad_request("DeleteOptions.preconditions must be an object")
    grace = query.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
    if grace is not None:
        try:
            grace = int(grace)
        except (TypeError, ValueError):
            raise status.bad_request(f"invalid gracePeriodSeconds {grace!r}") from None
    return DeleteOptions(
        dry_run=dry_run,
        uid=str(preconditions.get("uid") or ""),
        resource_version=str(preconditions.get("resourceVersion") or ""),
        grace_period_seconds=grace,
    )


def default_manager(user_agent: str) -> str:
    """A write without fieldManager is owned by its client's name (`kubectl/v1.32 ...` -> kubectl)."""
    return user_agent.split("/", 1)[0][:_MAX_MANAGER] or "unknown"


def _dry_run(values: list[str], kind: str) -> bool:
    unsupported = [v for v in values if v != _DRY_RUN_ALL]
    if unsupported:
        shown = ", ".join(f'"{v}"' for v in values)
        raise _invalid(
            kind, f'dryRun: Unsupported value: []string{{{shown}}}: supported values: "All"'
        )
    return bool(values)


def _boolean(text: str | None, name: str) -> bool:
    if text is None:
        return False
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0", ""):
        return False
    raise status.bad_request(f"invalid {name} value {text!r}: must be true or false")


def _invalid(kind: str, message: str) -> status.StatusError:
    return status.StatusError(
        422,
        "Invalid",
        f'{kind}.meta.k8s.io "" is invalid: {message}',
        {"group": "meta.k8s.io", "kind": kind},
    )
