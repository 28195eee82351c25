"""Test support for Pilot's xDS: proxies' nodes, a real Envoy on ADS.

Importable by any test (not conftest-only):
- `node(...)`: an Envoy node as a Pilot proxy sends it (`TEST_NODE_ID` by default);
- `EnvoyProcess(bootstrap, workdir)`: the real Envoy binary on loopback, with `start()`,
  `admin_url`, `wait_live()`, `config_dump()`, `stop()`;
- `ads_bootstrap(node_id, xds_port)`: a minimal ADS bootstrap for it;
- `run_async`: runs an async test function in a fresh loop, bounded, failing on leaked tasks.

The ADS client driver is pkg/xds's `XdsDriver` (`XdsDriver.ads`, `XdsDriver.memory`), the
one the node agent's SDS tests use too.
"""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format, struct_pb2

from pkg.testing.aio import run_async as run_async
from pkg.testing.envoy import EnvoyError as EnvoyError
from pkg.testing.envoy import EnvoyProcess as EnvoyProcess
from pkg.testing.envoy import envoy_path as envoy_path

TEST_NODE_ID = "sidecar~127.0.0.1~test.default~default.svc.cluster.local"


# Envoy.


def node(
    node_id: str = TEST_NODE_ID, cluster: str = "test", metadata: dict[str, Any] | None = None
) -> base_pb2.Node:
    result = base_pb2.Node(id=node_id, cluster=cluster)
    if metadata:
        result.metadata.CopyFrom(json_format.ParseDict(metadata, struct_pb2.Struct()))
    return result


def ads_bootstrap(
    node_id: str,
    xds_port: int,
    *,
    xds_host: str = "127.0.0.1",
    cluster: str = "test",
    metadata: dict[str, Any] | None = None,
    admin_host: str = "127.0.0.1",
    admin_port: int = 0,
    strict: bool = True,
) -> dict[str, Any]:
    """A minimal bootstrap: everything (LDS, CDS, RDS, EDS) from ADS at xds_host:xds_port.

    `strict` turns deprecated fields into NACKs, so tests catch them.
    """
    ads = {"ads": {}, "resource_api_version": "V3"}
    bootstrap: dict[str, Any] = {
        "node": {"id": node_id, "cluster": cluster, "metadata": metadata or {}},
        "admin": {"address": {"socket_address": {"address": admin_host, "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
            },
            "cds_config": ads,
            "lds_config": ads,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": "xds-grpc",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "xds-grpc",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": xds_host,
                                                    "port_value": xds_port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                }
            ]
        },
    }
    if strict:
        bootstrap["layered_runtime"] = {
            "layers": [
                {
                    "name": "static",
                    "static_layer": {"envoy.features.fail_on_any_deprecated_feature": True},
                }
            ]
        }
    return bootstrap
