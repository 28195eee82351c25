"""Control-plane metrics in Istio's names and format, rendered from prometheus-client registries."""

from pkg.monitoring._exposition import CONTENT_TYPE, render

__all__ = ["CONTENT_TYPE", "render"]
