"""What a write of one of Kubernetes' own kinds stores, by the rules its API server applies.

After the loader validated the object against its kind's schema, and under the store's write
lock (so allocations never collide), each kind's REST strategy is applied, as Kubernetes'
registry does (its PrepareForCreate / PrepareForUpdate and ValidateUpdate):

- a kind with a `status` subresource ignores the status a create or update sends (the stored
  one is kept; a new object starts with its kind's initial status), and a write to `/status`
  changes the status alone;
- Kubernetes' defaults (defaults.py) are filled in;
- Services get their cluster IP and node ports (allocator.py), keep them across updates that
  leave them out, and may not change them;
- a Deployment's selector must select its template, and may not change; a Pod's spec may not
  change but for images (its node is set once, by a binding); an EndpointSlice keeps its
  address type.

Istio's kinds pass through unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pilot.configstore import defaults, status
from pilot.configstore.admission import Admitted
from pilot.configstore.allocator import Allocator
from pkg.config.kinds import KindSchema

_Object = dict[str, Any]
_HEAD = ("apiVersion", "kind", "metadata")
STATUS = "status"
BINDING = "binding"  # the scheduler's write of a pod's node
_ALLOCATED = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")


@dataclasses.dataclass(frozen=True)
class Context:
    allocator: Allocator
    services: Callable[[], Iterable[Mapping[str, Any]]]  # every stored Service but this one
    current: _Object | None = None  # the stored object, on an update
    subresource: str = ""  # "" | "status" | "binding"


def prepare(admitted: Admitted, context: Context) -> Admitted:
    resource = admitted.resource
    schema = resource.schema
    if not schema.is_kubernetes or resource.body is None:
        return admitted
    meta = resource.metadata
    body = copy.deepcopy(resource.body)
    current = context.current
    if context.subresource == STATUS and current is not None:
        # Only the status moves; the rest, metadata included, is as stored.
        kept = {k: copy.deepcopy(v) for k, v in current.items() if k not in (*_HEAD, "status")}
        body = {**kept, "status": body.get("status")} if body.get("status") is not None else kept
        stored = current.get("metadata") or {}
        meta = dataclasses.replace(
            meta,
            labels=dict(stored.get("labels") or {}),
            annotations=dict(stored.get("annotations") or {}),
            extra={k: v for k, v in stored.items() if k in meta.extra or k in _EXTRA_META},
        )
        return _replace(admitted, meta, body)
    if STATUS in schema.subresources:
        if current is not None:
            body.pop("status", None)
            if current.get("status") is not None:
                body["status"] = copy.deepcopy(current["status"])
        else:
            body.pop("status", None)
    body, labels = defaults.apply(schema.kind, meta.name, body, meta.labels)
    meta = dataclasses.replace(meta, labels=labels)
    if current is None and STATUS in schema.subresources:
        initial = _initial_status(schema, body)
        if initial is not None:
            body["status"] = initial
    check = _CHECKS.get(schema.kind)
    if check is not None:
        check(schema, meta.name, body, current, context)
    return _replace(admitted, meta, body)


_EXTRA_META = ("ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds")


def _replace(admitted: Admitted, meta: Any, body: _Object) -> Admitted:
    resource = dataclasses.replace(admitted.resource, metadata=meta, body=body)
    return dataclasses.replace(admitted, resource=resource)


def _initial_status(schema: KindSchema, body: _Object) -> _Object | None:
    match schema.kind:
        case "Pod":
            return {"phase": "Pending", "qosClass": defaults.qos_class(body.get("spec") or {})}
        case "Namespace":
            return {"phase": "Active"}
        case "Service":
            return {"loadBalancer": {}}
    return None


# Checks per kind: raise a 422 Status, or fill in what the server owns.


def _service(
    schema: KindSchema, name: str, body: _Object, current: _Object | None, context: Context
) -> None:
    spec = body.setdefault("spec", {})
    old = (current or {}).get("spec") or {}
    if old and spec.get("type") != "ExternalName" and old.get("type") != "ExternalName":
        # An update that leaves out what was allocated keeps it, as the API server does.
        for key in _ALLOCATED:
            if spec.get(key) in (None, "", []) and old.get(key) not in (None, ""):
                spec[key] = copy.deepcopy(old[key])
        if spec.get("clusterIP") != old.get("clusterIP"):
            raise status.invalid_field(
                schema,
                name,
                "spec.clusterIPs[0]",
                f'Invalid value: []string{{"{spec.get("clusterIP")}"}}: may not change once set',
            )
        old_ports = {(p.get("port"), p.get("protocol")): p for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            before = old_ports.get((port.get("port"), port.get("protocol")))
            if before and before.get("nodePort") and not port.get("nodePort"):
                port["nodePort"] = before["nodePort"]
    if spec.get("type") not in ("NodePort", "LoadBalancer"):
        for index, port in enumerate(spec.get("ports") or []):
            if port.get("nodePort"):
                raise status.invalid_field(
                    schema,
                    name,
                    f"spec.ports[{index}].nodePort",
                    f"Forbidden: may not be used when `type` is '{spec.get('type')}'",
                )
    context.allocator.allocate(schema, name, spec, context.services())


def _deployment(
    schema: KindSchema, name: str, body: _Object, current: _Object | None, _: Context
) -> None:
    spec = body.get("spec") or {}
    selector = spec.get("selector") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if current is not None:
        # A changed selector is told first: it is the cause, the template's mismatch follows.
        before = (current.get("spec") or {}).get("selector")
        if before is not None and before != selector:
            raise status.invalid_field(
                schema,
                name,
                "spec.selector",
                f"Invalid value: {_go_selector(selector)}: field is immutable",
            )
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        raise status.invalid_field(
            schema,
            name,
            "spec.selector",
            'Invalid value: "null": empty selector is invalid for deployment',
        )
    if not selects(selector, labels):
        raise status.invalid_field(
            schema,
            name,
            "spec.template.metadata.labels",
            f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
        )


def _pod(
    schema: KindSchema, name: str, body: _Object, current: _Object | None, context: Context
) -> None:
    if current is None:
        return
    new, old = body.get("spec") or {}, current.get("spec") or {}
    if context.subresource == BINDING:
        if old.get("nodeName"):
            raise status.conflict(
                schema, name, f'pod {name} is already assigned to node "{old["nodeName"]}"'
            )
        return
    if _without_images(new) != _without_images(old):
        raise status.invalid_field(
            schema,
            name,
            "spec",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
            "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
            "(allow it to be set to 1 if it was previously negative)",
        )


def _without_images(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(spec))
    for group in ("containers", "initContainers"):
        for container in out.get(group) or []:
            container.pop("image", None)
    out.pop("activeDeadlineSeconds", None)
    out.pop("tolerations", None)
    return out


def _endpoint_slice(
    schema: KindSchema, name: str, body: _Object, current: _Object | None, _: Context
) -> None:
    if current is not None and current.get("addressType") != body.get("addressType"):
        raise status.invalid_field(
            schema,
            name,
            "addressType",
            f'Invalid value: "{body.get("addressType")}": field is immutable',
        )


_CHECKS: dict[str, Callable[[KindSchema, str, _Object, _Object | None, Context], None]] = {
    "Service": _service,
    "Deployment": _deployment,
    "Pod": _pod,
    "EndpointSlice": _endpoint_slice,
}


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        match operator:
            case "In" if labels.get(key) not in values:
                return False
            case "NotIn" if key in labels and labels[key] in values:
                return False
            case "Exists" if key not in labels:
                return False
            case "DoesNotExist" if key in labels:
                return False
    return True


def _go_map(labels: Mapping[str, str]) -> str:
    pairs = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
    return f"map[string]string{{{pairs}}}"


def _go_selector(selector: Mapping[str, Any]) -> str:
    return f"v1.LabelSelector{{MatchLabels:{_go_map(selector.get('matchLabels') or {})}}}"
