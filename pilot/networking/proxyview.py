"""What the generators need to know about the proxy they configure.

The xDS layer parses Envoy's node into its own richer type; generators depend only on
this narrow view so `networking` never imports `xds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class ProxyView(Protocol):
    @property
    def type(self) -> str: ...  # "sidecar" or "router"

    @property
    def ip(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def domain(self) -> str: ...  # the proxy's DNS domain, e.g. default.svc.cluster.local

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def metadata(self) -> Mapping[str, Any]: ...  # Envoy node metadata (SDS, NAMESPACE, ...)

    @property
    def locality(self) -> str: ...  # the Envoy node's locality, `region/zone/subzone` or ""
