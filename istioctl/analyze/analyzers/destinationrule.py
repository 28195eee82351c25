"""destinationrule.CaCertificateAnalyzer: TLS to a server whose certificate nobody checks."""

from __future__ import annotations

from typing import Any

from istioctl.analyze.analyzers.base import Analyzer, Context

_VERIFYING = ("SIMPLE", "MUTUAL")


def _unverified(tls: Any) -> str:
    """The TLS mode name when it verifies the server yet names no CA to verify it with."""
    mode = tls.DESCRIPTOR.fields_by_name["mode"].enum_type.values_by_number[tls.mode].name
    if mode not in _VERIFYING or tls.ca_certificates:
        return ""
    for field in ("credential_name", "insecure_skip_verify"):
        if field in tls.DESCRIPTOR.fields_by_name and _set(getattr(tls, field)):
            return ""
    return mode


def _set(value: Any) -> bool:
    return bool(getattr(value, "value", value))


def check(ctx: Context) -> None:
    for entry in ctx.snapshot.of("DestinationRule"):
        dr = entry.spec
        policy = dr.traffic_policy
        if policy.HasField("tls"):
            mode = _unverified(policy.tls)
            if mode:
                ctx.report(
                    entry, "NoServerCertificateVerificationDestinationLevel",
                    entry.name, entry.namespace, mode, dr.host,
                    path="spec.trafficPolicy.tls.mode",
                )  # fmt: skip
        for i, settings in enumerate(policy.port_level_settings):
            if settings.HasField("tls"):
                mode = _unverified(settings.tls)
                if mode:
                    ctx.report(
                        entry, "NoServerCertificateVerificationPortLevel",
                        entry.name, entry.namespace, mode, dr.host, str(settings.port.number),
                        path=f"spec.trafficPolicy.portLevelSettings[{i}].tls.mode",
                    )  # fmt: skip


ANALYZERS = (
    Analyzer(
        "destinationrule.CaCertificateAnalyzer",
        "Checks if caCertificates is set when TLS mode is SIMPLE/MUTUAL",
        check,
    ),
)
