"""Comparing injected YAML by structure, as the conformance tool reads Istio's golden files.

Two streams are equal when each document is, after what a Go struct round trip leaves
out or spells differently is put aside: empty values (omitempty), resource quantities
(`2000m` is `2`, `1024Mi` is `1Gi`), and the JSON inside annotations and env values
(`sidecar.istio.io/status`, ISTIO_META_POD_PORTS, PROXY_CONFIG, ...), compared parsed.
`diff_streams` lists each difference by its path.
"""

from __future__ import annotations

import decimal
import json
import re
from typing import Any

import yaml

_JSON_ANNOTATIONS = {"sidecar.istio.io/status", "proxy.istio.io/overrides"}
_JSON_ENV = {
    "ISTIO_META_POD_PORTS",
    "PROXY_CONFIG",
    "ISTIO_KUBE_APP_PROBERS",
    "ISTIO_PROMETHEUS_ANNOTATIONS",
}
# int fields Go's encoding/json omits when zero (omitempty), so a 0 and no field are one.
_OMITEMPTY_INTS = {"initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                   "failureThreshold", "hostPort"}  # fmt: skip
_SUFFIX: dict[str, decimal.Decimal | int] = {"": 1, "m": decimal.Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def quantity(value: Any) -> Any:
    match = _QUANTITY.match(str(value))
    if not match:
        return value
    return decimal.Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]


def normalize(value: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if path[-1:] in (("limits",), ("requests",)) and path[-2:-1] == ("resources",):
                item = quantity(item)
            elif (
                path[-1:] == ("annotations",) and key in _JSON_ANNOTATIONS and isinstance(item, str)
            ) or (key == "value" and value.get("name") in _JSON_ENV and isinstance(item, str)):
                item = json.loads(item)
            item = normalize(item, (*path, str(key)))
            if not path and key == "status" and isinstance(item, dict) and not any(item.values()):
                continue  # a Go struct's zero status ({} or {replicas: 0})
            if key in _OMITEMPTY_INTS and item == 0:
                continue
            if item not in (None, {}, [], ""):
                out[key] = item
        return out
    if isinstance(value, list):
        return [normalize(v, (*path, "[]")) for v in value]
    return value


def diff(got: Any, want: Any, path: str = "") -> list[str]:
    if isinstance(got, dict) and isinstance(want, dict):
        out = []
        for key in sorted(set(got) | set(want), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in got:
                out.append(f"{where}: missing, want {want[key]!r}")
            elif key not in want:
                out.append(f"{where}: unexpected {got[key]!r}")
            else:
                out.extend(diff(got[key], want[key], where))
        return out
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            names = lambda items: [i.get("name", i) if isinstance(i, dict) else i for i in items]  # noqa: E731
            return [f"{path}: {len(got)} items {names(got)!r}, want {len(want)} {names(want)!r}"]
        out = []
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            out.extend(diff(g, w, f"{path}[{i}]"))
        return out
    if got != want:
        return [f"{path}: {got!r}, want {want!r}"]
    return []


def documents(text: str) -> list[Any]:
    return [normalize(d) for d in yaml.safe_load_all(text) if d is not None]


def diff_streams(got: str, want: str) -> list[str]:
    got_docs, want_docs = documents(got), documents(want)
    if len(got_docs) != len(want_docs):
        return [f"{len(got_docs)} documents, want {len(want_docs)}"]
    out: list[str] = []
    for i, (g, w) in enumerate(zip(got_docs, want_docs, strict=True)):
        out.extend(f"document {i + 1}: {line}" for line in diff(g, w))
    return out
