"""A pod's status as the kubelet writes it back: phase, conditions, container statuses.

Pure functions of the pod, what the runtime says of its containers and what the readiness
probes found, worded as Kubernetes words them (`Running`, `ContainersReady`, `waiting:
{reason: CrashLoopBackOff}`), so kubectl, the endpoints controller and Pilot read it as they
read a cluster's.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from tools.local.podruntime import ContainerStatus, State

_CONDITIONS = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def timestamp(unix: float | None = None) -> str:
    moment = (
        datetime.datetime.fromtimestamp(unix, datetime.UTC)
        if unix
        else datetime.datetime.now(datetime.UTC)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def container_status(
    spec: Mapping[str, Any],
    status: ContainerStatus | None,
    ready: bool,
    waiting: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """One entry of status.containerStatuses; `waiting` overrides (a reason and message the
    kubelet itself has, as ErrImagePull)."""
    out: dict[str, Any] = {
        "name": spec["name"],
        "image": spec.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": status.restarts if status else 0,
        "started": False,
    }
    if waiting is not None or status is None:
        reason, message = waiting or ("ContainerCreating", "")
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        return out
    out["containerID"] = f"local://{spec['name']}"
    if status.state == State.RUNNING:
        out["state"] = {"running": {"startedAt": timestamp(status.started_at)}}
        out["started"] = True
        out["ready"] = ready
    elif status.state == State.TERMINATED:
        out["state"] = {
            "terminated": {
                "exitCode": status.exit_code or 0,
                "reason": status.reason or ("Completed" if not status.exit_code else "Error"),
                "startedAt": timestamp(status.started_at),
                "finishedAt": timestamp(status.finished_at),
            }
        }
    else:
        waiting_state: dict[str, Any] = {"reason": status.reason or "ContainerCreating"}
        if status.message:
            waiting_state["message"] = status.message
        out["state"] = {"waiting": waiting_state}
    return out


def phase(restart_policy: str, statuses: Sequence[Mapping[str, Any]]) -> str:
    """Kubernetes' rule: Pending until every container has started once; Running while any
    runs or will run again; Succeeded or Failed once all have ended for good."""
    if not statuses:
        return "Pending"
    states = [next(iter(s["state"])) for s in statuses]
    if any(
        state == "waiting" and s["restartCount"] == 0
        for state, s in zip(states, statuses, strict=True)
    ):
        return "Pending"
    if all(state == "terminated" for state in states) and restart_policy != "Always":
        codes = [s["state"]["terminated"]["exitCode"] for s in statuses]
        if all(code == 0 for code in codes):
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
    return "Running"


def conditions(
    previous: Sequence[Mapping[str, Any]], ready: bool, initialized: bool, started: bool
) -> list[dict[str, Any]]:
    """The pod's conditions, each keeping its last transition time while its status holds."""
    wanted = {
        "PodScheduled": True,
        "PodReadyToStartContainers": started,
        "Initialized": initialized,
        "ContainersReady": ready,
        "Ready": ready,
    }
    before = {c.get("type"): c for c in previous}
    now = timestamp()
    out = []
    for name in _CONDITIONS:
        value = "True" if wanted[name] else "False"
        old = before.get(name) or {}
        changed_at = old.get("lastTransitionTime") if old.get("status") == value else now
        condition: dict[str, Any] = {
            "type": name,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": changed_at or now,
        }
        if name in ("Ready", "ContainersReady") and not ready:
            condition["reason"] = "ContainersNotReady"
        out.append(condition)
    return out
