"""The Envoy config that reaches the agent: the `sds-grpc` cluster and SDS secret configs.

pilot-agent puts `sds_cluster(socket)` in each Envoy's static clusters (Istio's reserved name
`sds-grpc`); Pilot's TLS contexts then name `default` and `ROOTCA` through
`sds_secret_config(name)`. The tests here build Envoys from the same functions.
"""

from __future__ import annotations

import pathlib
from typing import Any

from security.nodeagent.resources import ROOT_SECRET, WORKLOAD_SECRET

SDS_CLUSTER = "sds-grpc"

_HTTP2_OPTIONS = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}


def sds_cluster(socket_path: str | pathlib.Path) -> dict[str, Any]:
    """The static cluster reaching the agent's SDS socket (gRPC: HTTP/2 over a pipe)."""
    return {
        "name": SDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": SDS_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": str(socket_path)}}}}]}
            ],
        },
        "typed_extension_protocol_options": _HTTP2_OPTIONS,
    }


def sds_secret_config(name: str) -> dict[str, Any]:
    """An `SdsSecretConfig` fetching secret `name` from the agent."""
    return {
        "name": name,
        "sds_config": {
            "api_config_source": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": SDS_CLUSTER}}],
            },
            "resource_api_version": "V3",
        },
    }


def common_tls_context() -> dict[str, Any]:
    """A CommonTlsContext with the workload certificate and the trust bundle from SDS."""
    return {
        "tls_certificate_sds_secret_configs": [sds_secret_config(WORKLOAD_SECRET)],
        "validation_context_sds_secret_config": sds_secret_config(ROOT_SECRET),
    }
