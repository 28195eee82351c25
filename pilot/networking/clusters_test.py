"""Connection pools, outlier detection and consistent hashing: what a DestinationRule makes of
an outbound cluster (Istio's `cluster_traffic_policy.go`), and that the real Envoy takes it."""

from __future__ import annotations

import json
import subprocess
import textwrap
from typing import Any

from google.protobuf import json_format

from pilot.networking import generator
from pilot.networking.testing import bookinfo_push, sidecar
from pkg.config import loader
from pkg.testing.envoy import envoy_path

MAX = 2**32 - 1
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
REVIEWS = "outbound|9080||reviews.default.svc.cluster.local"

# Istio's circuit-breaking task, for Bookinfo's reviews.
CIRCUIT_BREAKER = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
"""


def clusters(rule: str = "") -> dict[str, dict[str, Any]]:
    push = bookinfo_push(extra=loader.load_text(rule) if rule else ())
    return {
        name: json_format.MessageToDict(message, preserving_proto_field_name=True)
        for name, message in generator.build_clusters(sidecar("productpage-v1"), push, [])
    }


def test_the_circuit_breaking_task_limits_connections_pending_and_requests_per_connection():
    cluster = clusters(CIRCUIT_BREAKER)[REVIEWS]
    assert cluster["circuit_breakers"] == {
        "thresholds": [
            {
                "max_connections": 1,
                "max_pending_requests": 1,
                "max_requests": MAX,
                "max_retries": MAX,
                "track_remaining": True,
            }
        ]
    }
    http = cluster["typed_extension_protocol_options"][HTTP_OPTIONS]
    assert http["common_http_protocol_options"] == {"max_requests_per_connection": 1}
    assert http["explicit_http_config"] == {"http_protocol_options": {}}
    assert cluster["outlier_detection"] == {
        "consecutive_5xx": 1,
        "enforcing_consecutive_5xx": 100,
        "interval": "1s",
        "base_ejection_time": "180s",
        "max_ejection_percent": 100,
        "enforcing_success_rate": 0,
    }
    # With a few pods, Envoy's 50% panic threshold would send traffic to ejected ones.
    assert cluster["common_lb_config"] == {"healthy_panic_threshold": {}}  # 0%, as Istio sets


def test_without_a_rule_every_outbound_cluster_has_istios_unlimited_thresholds():
    """Envoy's own defaults (1024 connections, 3 retries at once) would cut a busy
    service's calls where no rule asked for limits."""
    for name, cluster in clusters().items():
        if name.startswith("outbound|"):
            (thresholds,) = cluster["circuit_breakers"]["thresholds"]
            assert thresholds["max_retries"] == MAX, name
            assert thresholds["max_connections"] == MAX, name
    assert "circuit_breakers" not in clusters()["inbound|9080||"]


def test_an_http2_service_keeps_http2_with_its_per_connection_options():
    rule = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    connectionPool:
      http: {maxRequestsPerConnection: 5, idleTimeout: 30s}
      tcp: {maxConnectionDuration: 1h}
"""
    extra = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: grpc, namespace: default}
spec:
  hosts: [grpc.example.com]
  resolution: DNS
  ports: [{number: 50051, name: grpc, protocol: GRPC}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: grpc, namespace: default}
spec:
  host: grpc.example.com
  trafficPolicy:
    connectionPool:
      http: {maxRequestsPerConnection: 5}
"""
    found = clusters(rule + "---" + extra)
    grpc = found["outbound|50051||grpc.example.com"]["typed_extension_protocol_options"]
    assert grpc[HTTP_OPTIONS]["explicit_http_config"] == {"http2_protocol_options": {}}
    assert grpc[HTTP_OPTIONS]["common_http_protocol_options"] == {"max_requests_per_connection": 5}
    ratings = found["outbound|9080||ratings.default.svc.cluster.local"]
    assert ratings["typed_extension_protocol_options"][HTTP_OPTIONS][
        "common_http_protocol_options"
    ] == {
        "max_requests_per_connection": 5,
        "idle_timeout": "30s",
        "max_connection_duration": "3600s",
    }
    # The options every other HTTP/2 cluster shares were not touched.
    plain = clusters(extra.split("---")[0])["outbound|50051||grpc.example.com"]
    assert (
        "common_http_protocol_options"
        not in plain["typed_extension_protocol_options"][HTTP_OPTIONS]
    )


def test_consecutive_5xx_errors_of_zero_switches_that_ejection_off():
    rule = CIRCUIT_BREAKER.replace("consecutive5xxErrors: 1", "consecutive5xxErrors: 0")
    rule = rule.replace("      maxEjectionPercent: 100", "      minHealthPercent: 40")
    cluster = clusters(rule)[REVIEWS]
    assert cluster["outlier_detection"]["consecutive_5xx"] == 0
    assert cluster["outlier_detection"]["enforcing_consecutive_5xx"] == 0
    assert cluster["common_lb_config"] == {"healthy_panic_threshold": {"value": 40.0}}


def test_consistent_hash_builds_a_ring_or_a_maglev_table():
    rule = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 2048}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}
"""
    found = clusters(rule)
    assert found[REVIEWS]["lb_policy"] == "RING_HASH"
    assert found[REVIEWS]["ring_hash_lb_config"] == {"minimum_ring_size": "2048"}
    v1 = found["outbound|9080|v1|reviews.default.svc.cluster.local"]
    assert v1["lb_policy"] == "MAGLEV"
    assert v1["maglev_lb_config"] == {"table_size": "65537"}


def test_the_real_envoy_accepts_the_generated_clusters(tmp_path):
    rule = CIRCUIT_BREAKER.replace(
        "    outlierDetection:",
        "    loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s}}}\n"
        "    outlierDetection:",
    )
    found = clusters(rule)
    static = []
    for name in (REVIEWS, "outbound|9080||ratings.default.svc.cluster.local"):
        cluster = dict(found[name])
        # As a static cluster: the same policy, without the ADS and SDS it would need.
        for key in ("eds_cluster_config", "transport_socket_matches"):
            cluster.pop(key, None)
        cluster["type"] = "STATIC"
        cluster["load_assignment"] = {"cluster_name": name, "endpoints": []}
        static.append(cluster)
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps({"static_resources": {"clusters": static}}))
    result = subprocess.run(
        [envoy_path(), "--mode", "validate", "-c", str(config), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, textwrap.shorten(result.stdout + result.stderr, 2000)
