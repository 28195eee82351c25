"""Recent traces in memory, bounded: the collector's only state.

Spans arrive in Zipkin's v2 JSON model (one dict per span, `traceId` and `id` in hex) and are
grouped by trace. At most `max_traces` traces are kept, the least recently updated dropped
first, and at most `max_spans_per_trace` spans of one trace (a runaway loop must not take the
memory of the machine). Queries answer as Zipkin's API does: newest traces first.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

_HEX = re.compile(r"^[0-9a-f]{1,32}$")
_KINDS = frozenset({"CLIENT", "SERVER", "PRODUCER", "CONSUMER"})

Span = dict[str, Any]


class SpanError(ValueError):
    """A span that is not Zipkin v2: says which span (index) and which field."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoreOptions:
    max_traces: int = 1000
    max_spans_per_trace: int = 1000


def _hex_id(value: object, field: str, where: str, longest: int) -> str:
    if not isinstance(value, str) or not _HEX.match(value.lower()) or len(value) > longest:
        raise SpanError(f"{where}.{field}: {value!r} is not a hex id of at most {longest} digits")
    # Zipkin keeps ids lower-case and left-pads them to 16 (or 32 for 128-bit trace ids).
    width = 16 if len(value) <= 16 else 32
    return value.lower().rjust(width, "0")


def normalize(span: object, where: str) -> Span:
    """A checked copy of one span with its ids in Zipkin's canonical form."""
    if not isinstance(span, dict):
        raise SpanError(f"{where}: a span is a JSON object, got {type(span).__name__}")
    out = dict(span)
    out["traceId"] = _hex_id(span.get("traceId"), "traceId", where, 32)
    out["id"] = _hex_id(span.get("id"), "id", where, 16)
    if span.get("parentId") is not None:
        out["parentId"] = _hex_id(span["parentId"], "parentId", where, 16)
    kind = span.get("kind")
    if kind is not None and kind not in _KINDS:
        raise SpanError(f"{where}.kind: {kind!r} is not one of {sorted(_KINDS)}")
    for field in ("timestamp", "duration"):
        value = span.get(field)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise SpanError(f"{where}.{field}: {value!r} is not a non-negative integer (µs)")
    for field in ("localEndpoint", "remoteEndpoint", "tags"):
        if span.get(field) is not None and not isinstance(span[field], dict):
            raise SpanError(f"{where}.{field}: must be a JSON object")
    if isinstance(out.get("name"), str):
        out["name"] = out["name"].lower()  # Zipkin stores span names lower-case
    return out


def service_of(span: Span) -> str:
    endpoint = span.get("localEndpoint") or {}
    name = endpoint.get("serviceName")
    return name.lower() if isinstance(name, str) else ""


class SpanStore:
    def __init__(self, options: StoreOptions | None = None) -> None:
        self.options = options or StoreOptions()
        # trace id -> (span id, kind, shared) -> span; ordered oldest update first.
        self._traces: collections.OrderedDict[str, dict[tuple[str, str, bool], Span]] = (
            collections.OrderedDict()
        )
        self.accepted = 0
        self.dropped = 0  # spans refused because their trace was full

    def add(self, spans: Iterable[Span]) -> None:
        """Store normalized spans (see `normalize`); a span sent twice is kept once, merged."""
        for span in spans:
            trace_id = span["traceId"]
            trace = self._traces.pop(trace_id, None) or {}
            key = (span["id"], span.get("kind") or "", bool(span.get("shared")))
            if key in trace:
                trace[key] = {**trace[key], **span}
            elif len(trace) >= self.options.max_spans_per_trace:
                self.dropped += 1
            else:
                trace[key] = span
                self.accepted += 1
            self._traces[trace_id] = trace  # now the most recently updated
            while len(self._traces) > self.options.max_traces:
                self._traces.popitem(last=False)

    def trace(self, trace_id: str) -> list[Span] | None:
        found = self._traces.get(trace_id.lower().rjust(16 if len(trace_id) <= 16 else 32, "0"))
        return _sorted(found.values()) if found is not None else None

    def services(self) -> list[str]:
        return sorted({service_of(s) for t in self._traces.values() for s in t.values()} - {""})

    def span_names(self, service: str) -> list[str]:
        service = service.lower()
        return sorted(
            {
                s["name"]
                for t in self._traces.values()
                for s in t.values()
                if service_of(s) == service and isinstance(s.get("name"), str)
            }
        )

    def traces(self, query: Mapping[str, Any]) -> list[list[Span]]:
        """Traces matching Zipkin's query parameters, newest first, at most `limit`."""
        service = (query.get("serviceName") or "").lower()
        span_name = (query.get("spanName") or "").lower()
        min_duration = int(query.get("minDuration") or 0)
        end_ts = int(query.get("endTs") or 0) * 1000  # ms -> µs
        lookback = int(query.get("lookback") or 0) * 1000
        limit = int(query.get("limit") or 10)
        matches: list[tuple[int, list[Span]]] = []
        for trace in self._traces.values():
            spans = list(trace.values())
            start = min((s.get("timestamp") or 0) for s in spans)
            if end_ts and start > end_ts:
                continue
            if end_ts and lookback and start < end_ts - lookback:
                continue
            if not any(_matches(s, service, span_name, min_duration) for s in spans):
                continue
            matches.append((start, _sorted(spans)))
        matches.sort(key=lambda m: m[0], reverse=True)
        return [spans for _, spans in matches[:limit]]


def _matches(span: Span, service: str, span_name: str, min_duration: int) -> bool:
    if service and service_of(span) != service:
        return False
    if span_name and span.get("name") != span_name:
        return False
    return not min_duration or (span.get("duration") or 0) >= min_duration


def _sorted(spans: Iterable[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: (s.get("timestamp") or 0, s["id"]))
