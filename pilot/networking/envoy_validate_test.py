"""Every golden scenario's config, loaded by the real Envoy (`envoy --mode validate`).

What the generators return for each proxy of pilot/networking's golden scenarios (captured
sidecars included: virtualOutbound, the per-destination listeners, virtualInbound) is put in
a bootstrap as static clusters and listeners, each RDS reference replaced by the table it
names, and Envoy checks all of it as it would on an xDS update: a field it does not know, a
reference it cannot resolve, two filter chains with one match, a deprecated field (the
runtime flag Istio's agent sets too). Validation binds no port, so it runs beside anything.
"""

from __future__ import annotations

import copy
import json
import pathlib
import subprocess
from typing import Any

import pytest

from pilot.networking.golden_test import SCENARIOS
from pilot.networking.testing import generate_all
from pkg.testing.envoy import envoy_path

HCM = "envoy.filters.network.http_connection_manager"
_XDS = {
    "name": "xds-grpc",
    "type": "STATIC",
    "connect_timeout": "1s",
    "typed_extension_protocol_options": {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    },
    "load_assignment": {
        "cluster_name": "xds-grpc",
        "endpoints": [
            {
                "lb_endpoints": [
                    {
                        "endpoint": {
                            "address": {
                                "socket_address": {"address": "127.0.0.1", "port_value": 15010}
                            }
                        }
                    }
                ]
            }
        ],
    },
}


def bootstrap(config: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A bootstrap holding a proxy's generated CDS and LDS, with its RDS tables inlined."""
    tables = {r["name"]: {k: v for k, v in r.items()} for r in config["RDS"]}
    listeners = copy.deepcopy(config["LDS"])
    for listener in listeners:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                typed = network_filter["typed_config"]
                if network_filter["name"] == HCM and "rds" in typed:
                    typed["route_config"] = tables[typed.pop("rds")["route_config_name"]]
    return {
        "node": {
            "id": "sidecar~10.0.0.1~validate.default~default.svc.cluster.local",
            "cluster": "validate",
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
            }
        },
        "static_resources": {"clusters": [*config["CDS"], _XDS], "listeners": listeners},
        "layered_runtime": {
            "layers": [
                {
                    "name": "global config",
                    "static_layer": {"envoy.features.fail_on_any_deprecated_feature": True},
                }
            ]
        },
    }


def validate(config: dict[str, Any], tmp_path: pathlib.Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [
            envoy_path(),
            "--mode",
            "validate",
            "-c",
            str(path),
            "--disable-hot-restart",
            "--log-level",
            "warn",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_envoy_accepts_every_proxys_generated_config(scenario: str, tmp_path: pathlib.Path):
    push, proxies = SCENARIOS[scenario]()
    for name, proxy in proxies.items():
        done = validate(bootstrap(generate_all(proxy, push)), tmp_path)
        assert done.returncode == 0, f"{scenario}/{name}: {done.stdout}{done.stderr}"


def test_validation_refuses_what_envoy_would_nack(tmp_path: pathlib.Path):
    # The check can fail: two catch-all chains on virtualOutbound are one match twice.
    push, proxies = SCENARIOS["captured"]()
    config = generate_all(proxies["productpage-v1"], push)
    outbound = next(x for x in config["LDS"] if x["name"] == "virtualOutbound")
    outbound["filter_chains"].append({**outbound["filter_chains"][-1], "name": "again"})
    done = validate(bootstrap(config), tmp_path)
    assert done.returncode != 0
    assert "has the same matching rules defined as" in done.stdout + done.stderr
