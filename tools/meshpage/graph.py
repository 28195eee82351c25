"""The service graph from Istio's standard metrics, as Kiali builds its versioned-app graph.

Pure functions: PromQL text in, and Prometheus' instant-vector results (plus the workloads
the config store knows) to nodes and edges out. Every request is counted once, by the
destination's sidecar (`reporter="destination"`), which also knows whether the connection was
mutual TLS (`connection_security_policy`); traffic into the mesh from outside has
`source_app="unknown"` and comes from an "unknown" node, as in Kiali.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

_BY = "source_app, source_version, destination_app, destination_version"
UNKNOWN = "unknown"


def queries(window: str) -> dict[str, str]:
    """The instant queries one graph needs, by purpose; `window` is a PromQL range like 1m."""
    selector = 'reporter="destination"'
    rate = f"rate(istio_requests_total{{{selector}}}[{window}])"
    buckets = f"rate(istio_request_duration_seconds_bucket{{{selector}}}[{window}])"
    return {
        "requests": f"sum by ({_BY}, response_code, connection_security_policy) ({rate})",
        "p50": f"histogram_quantile(0.5, sum by (le, {_BY}) ({buckets}))",
        "p99": f"histogram_quantile(0.99, sum by (le, {_BY}) ({buckets}))",
    }


@dataclasses.dataclass(frozen=True)
class Workload:
    app: str
    version: str  # "" when the workload has none (a gateway); "unknown" reads as none

    def __post_init__(self) -> None:
        if self.version == UNKNOWN:
            object.__setattr__(self, "version", "")

    @property
    def id(self) -> str:
        return f"{self.app}-{self.version}" if self.version else self.app


@dataclasses.dataclass
class _Edge:
    source: Workload
    target: Workload
    rps: float = 0.0
    errors: float = 0.0  # requests per second answered 5xx
    mtls_rps: float = 0.0
    series: int = 0  # label sets seen, and how many of them were mutual TLS: what an idle
    mtls_series: int = 0  # edge (no requests in the window) is judged by
    p50: float | None = None
    p99: float | None = None


def _number(sample: Mapping[str, Any]) -> float | None:
    try:
        value = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _ends(metric: Mapping[str, str]) -> tuple[Workload, Workload]:
    source = Workload(metric.get("source_app") or UNKNOWN, metric.get("source_version") or "")
    target = Workload(
        metric.get("destination_app") or UNKNOWN, metric.get("destination_version") or ""
    )
    return source, target


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def build_graph(
    results: Mapping[str, list[Mapping[str, Any]]], workloads: Iterable[Workload] = ()
) -> dict[str, Any]:
    """Nodes (apps as boxes, their versions inside) and edges with rates, errors, latency, mTLS.

    `results` maps each key of `queries()` to Prometheus' `data.result` list for it.
    """
    edges: dict[tuple[Workload, Workload], _Edge] = {}
    for sample in results.get("requests", []):
        value = _number(sample)
        if value is None:
            continue
        metric = sample.get("metric", {})
        source, target = _ends(metric)
        edge = edges.setdefault((source, target), _Edge(source, target))
        edge.rps += value
        if str(metric.get("response_code", "")).startswith("5"):
            edge.errors += value
        edge.series += 1
        if metric.get("connection_security_policy") == "mutual_tls":
            edge.mtls_rps += value
            edge.mtls_series += 1
    for key, field in (("p50", "p50"), ("p99", "p99")):
        for sample in results.get(key, []):
            value = _number(sample)
            pair = _ends(sample.get("metric", {}))
            if value is not None and pair in edges:
                setattr(edges[pair], field, value)

    known = set(workloads) | {w for pair in edges for w in pair}
    outgoing: dict[Workload, float] = {}
    incoming: dict[Workload, float] = {}
    errors_in: dict[Workload, float] = {}
    for edge in edges.values():
        outgoing[edge.source] = outgoing.get(edge.source, 0.0) + edge.rps
        incoming[edge.target] = incoming.get(edge.target, 0.0) + edge.rps
        errors_in[edge.target] = errors_in.get(edge.target, 0.0) + edge.errors

    nodes: list[dict[str, Any]] = []
    for app in sorted({w.app for w in known}):
        versions = sorted((w for w in known if w.app == app), key=lambda w: w.version)
        boxed = any(w.version for w in versions)
        if boxed:
            nodes.append({"id": f"app:{app}", "app": app, "kind": "app", "label": app})
        for w in versions:
            rps_in = incoming.get(w, 0.0)
            nodes.append(
                {
                    "id": w.id,
                    "app": w.app,
                    "version": w.version,
                    "kind": "workload",
                    "label": w.version if boxed else w.app,
                    "parent": f"app:{app}" if boxed else None,
                    "rps_in": _round(rps_in),
                    "rps_out": _round(outgoing.get(w, 0.0)),
                    "error_rate": _round(errors_in.get(w, 0.0) / rps_in if rps_in else 0.0, 4),
                }
            )
    edge_list = []
    for edge in sorted(edges.values(), key=lambda e: (e.source.id, e.target.id)):
        # The share of the caller's traffic to this service that this version got: the
        # number that moves when a VirtualService splits 80-20.
        to_app = sum(
            e.rps
            for e in edges.values()
            if e.source == edge.source and e.target.app == edge.target.app
        )
        edge_list.append(
            {
                "id": f"{edge.source.id}->{edge.target.id}",
                "source": edge.source.id,
                "target": edge.target.id,
                "rps": _round(edge.rps),
                "percent": _round(100.0 * edge.rps / to_app if to_app else 0.0, 1),
                "error_rate": _round(edge.errors / edge.rps if edge.rps else 0.0, 4),
                "p50_ms": _round(edge.p50 * 1000 if edge.p50 is not None else None, 1),
                "p99_ms": _round(edge.p99 * 1000 if edge.p99 is not None else None, 1),
                # Kiali marks an edge secure when most of its traffic was mutual TLS.
                "mtls": edge.mtls_rps / edge.rps >= 0.5
                if edge.rps > 0
                else edge.series > 0 and 2 * edge.mtls_series >= edge.series,
            }
        )
    return {"nodes": nodes, "edges": edge_list}
