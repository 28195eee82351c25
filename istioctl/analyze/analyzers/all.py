"""Every analyzer `istioctl analyze` runs, listed explicitly (no import side effects)."""

from __future__ import annotations

from istioctl.analyze.analyzers import annotations as annotation
from istioctl.analyze.analyzers import (
    auth,
    destinationrule,
    gateway,
    injection,
    schema,
    service,
    sidecar,
    virtualservice,
)
from istioctl.analyze.analyzers.base import Analyzer

ANALYZERS: tuple[Analyzer, ...] = (
    *annotation.ANALYZERS,
    *auth.ANALYZERS,
    *destinationrule.ANALYZERS,
    *gateway.ANALYZERS,
    *injection.ANALYZERS,
    *schema.ANALYZERS,
    *service.ANALYZERS,
    *sidecar.ANALYZERS,
    *virtualservice.ANALYZERS,
)
