"""The request headers every Bookinfo service copies from its inbound request to its outbound calls.

The mesh can only join the spans of one request into a trace, and route a signed-in user's
whole request the same way, if the application carries these headers across its own hop:
Envoy sees an inbound request and, later, unrelated outbound ones.
"""

from __future__ import annotations

from collections.abc import Mapping

# Istio's list (productpage.py, LibertyRestEndpoint.java): tracing (Zipkin B3, OpenTracing,
# W3C), the request id Envoy stamps at the edge, and the user identity routing rules match on
# (`end-user` since 1.0, the `user` cookie in 0.x rules).
PROPAGATED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "traceparent",
    "tracestate",
    "end-user",
    "user-agent",
    "cookie",
)


def forward_headers(inbound: Mapping[str, str]) -> dict[str, str]:
    """The propagated headers present in `inbound` (matched case-insensitively), lower-cased."""
    lowered = {name.lower(): value for name, value in inbound.items()}
    return {name: lowered[name] for name in PROPAGATED_HEADERS if name in lowered}
