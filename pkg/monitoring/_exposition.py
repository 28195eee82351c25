"""Prometheus text format (0.0.4) with counters under their own names, as Istio exports them.

Istio's components export through OpenCensus/OpenTelemetry, whose Prometheus exporter writes a
counter under the name it was given: `pilot_xds_pushes`, `citadel_server_csr_count`.
prometheus-client insists on `<name>_total` plus a `<name>_created` series. Dashboards and
alerts written for Istio query Istio's names, so this renderer writes each counter family
under its registered name and leaves the `_created` series out; gauges and histograms are
written as prometheus-client writes them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _line(name: str, labels: dict[str, str], value: float) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {floatToGoString(value)}\n"
    return f"{name} {floatToGoString(value)}\n"


def render(registry: CollectorRegistry) -> bytes:
    out: list[str] = []
    for family in registry.collect():
        name, kind = family.name, family.type
        if kind == "unknown":
            kind = "untyped"
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            sample_name = sample.name
            if kind == "counter" and sample_name == f"{name}_total":
                sample_name = name
            out.append(_line(sample_name, sample.labels, sample.value))
    return "".join(out).encode()
