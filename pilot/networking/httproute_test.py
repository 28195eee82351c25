"""Relative route weights: what Pilot sends, and that the real Envoy takes it."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest
from google.protobuf import json_format

from pilot.networking import generator, httproute
from pilot.networking.testing import bookinfo_push, sidecar
from pkg.config import loader
from pkg.testing.envoy import envoy_path

MAX = 2**32 - 1
SAMPLES = ("destination-rule-all", "bookinfo-gateway")


@pytest.mark.parametrize(
    ("weights", "sent"),
    [
        ([80, 20], [80, 20]),
        ([4, 1], [4, 1]),  # relative: Envoy splits 4/1 as 80/20
        ([0, 5], [0, 5]),
        ([3, 3, 3], [3, 3, 3]),
        ([0, 0], [1, 1]),  # refused by validation; even rather than a route Envoy NACKs
    ],
)
def test_weights_go_as_written_when_envoy_can_take_them(weights, sent):
    assert httproute.envoy_weights(weights) == sent


def test_weights_past_envoys_total_are_scaled_in_proportion():
    big = 2**31 - 1
    sent = httproute.envoy_weights([big, big, big, 1])
    assert sum(sent) <= MAX
    assert sent[0] == sent[1] == sent[2]
    assert sent[3] == 1  # the small one keeps its share


def test_a_redirect_code_envoy_lacks_answers_301():
    redirect = httproute._redirect(
        loader.load_text(
            "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: r}\n"
            "spec: {hosts: [r], http: [{redirect: {uri: /x, redirectCode: 300}}]}\n"
        )[0]
        .spec.http[0]
        .redirect
    )
    assert redirect == {"path_redirect": "/x", "response_code": "MOVED_PERMANENTLY"}


def _reviews_route(weights: list[int]) -> dict:
    routes = "".join(
        f"    - destination: {{host: reviews, subset: v{i + 1}}}\n      weight: {w}\n"
        for i, w in enumerate(weights)
    )
    (vs,) = loader.load_text(
        "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\n"
        "metadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n" + routes
    )
    push = bookinfo_push(*SAMPLES, extra=[vs])
    ((_, config),) = generator.build_routes(sidecar("productpage-v1"), push, [])
    as_dict = json_format.MessageToDict(config, preserving_proto_field_name=True)
    reviews = next(v for v in as_dict["virtual_hosts"] if v["name"].startswith("reviews."))
    return reviews["routes"][0]["route"]


def test_a_4_1_split_is_sent_as_weights_4_and_1_without_a_total():
    weighted = _reviews_route([4, 1])["weighted_clusters"]
    assert "total_weight" not in weighted  # deprecated in Envoy: it sums the weights itself
    assert [(c["name"].split("|")[2], c["weight"]) for c in weighted["clusters"]] == [
        ("v1", 4),
        ("v2", 1),
    ]


@pytest.mark.parametrize(
    "weights", [[4, 1], [60, 30, 10], [2**31 - 1, 2**31 - 1, 2**31 - 1]], ids=str
)
def test_the_real_envoy_accepts_the_generated_split(tmp_path, weights):
    route = _reviews_route(weights)
    clusters = [
        {
            "name": c["name"],
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": c["name"], "endpoints": []},
        }
        for c in route["weighted_clusters"]["clusters"]
    ]
    bootstrap = {
        "static_resources": {
            "clusters": clusters,
            "listeners": [
                {
                    "name": "l",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
                    "filter_chains": [{"filters": [_connection_manager(route)]}],
                }
            ],
        }
    }
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(bootstrap))
    result = subprocess.run(
        [envoy_path(), "--mode", "validate", "-c", str(config), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, textwrap.shorten(result.stdout + result.stderr, 2000)


def _connection_manager(route: dict) -> dict:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network."
            "http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "t",
            "route_config": {
                "virtual_hosts": [
                    {
                        "name": "v",
                        "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": route}],
                    }
                ]
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    },
                }
            ],
        },
    }


HASH_RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer:
        consistentHash: {httpQueryParameterName: user}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpCookie: {name: user, path: /, ttl: 10s}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      loadBalancer:
        consistentHash: {useSourceIp: true}
"""


HASH_VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{headers: {end-user: {exact: kim}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - match: [{headers: {end-user: {exact: lee}}}]
    route: [{destination: {host: reviews, subset: v1, port: {number: 9080}}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""


def _routes_with(*yaml_texts: str) -> dict[str, list[dict]]:
    extra = [r for text in yaml_texts for r in loader.load_text(text)]
    push = bookinfo_push(extra=extra)
    ((_, config),) = generator.build_routes(sidecar("productpage-v1"), push, [])
    as_dict = json_format.MessageToDict(config, preserving_proto_field_name=True)
    return {v["name"].split(".")[0]: v["routes"] for v in as_dict["virtual_hosts"]}


def test_a_consistent_hash_rule_gives_the_default_route_its_hash_key():
    """Without a hash policy on the route a ring-hash cluster hashes nothing: every request
    lands at random, and no session sticks."""
    rule = HASH_RULE.split("    portLevelSettings:")[0]
    (route,) = _routes_with(rule)["reviews"]
    assert route["route"]["hash_policy"] == [{"header": {"header_name": "x-user"}}]
    (plain,) = _routes_with()["reviews"]
    assert "hash_policy" not in plain["route"]


def test_a_destinations_hash_key_comes_from_its_subset_then_its_port_then_the_rule():
    jason, kim, lee, rest = (
        r["route"]["hash_policy"] for r in _routes_with(HASH_RULE, HASH_VS)["reviews"]
    )
    assert jason == [{"cookie": {"name": "user", "path": "/", "ttl": "10s"}}]
    assert kim == [{"connection_properties": {"source_ip": True}}]
    assert lee == [{"query_parameter": {"name": "user"}}]  # the port's, for a named port
    assert rest == [{"header": {"header_name": "x-user"}}]


def test_the_real_envoy_accepts_the_hash_keys(tmp_path):
    for route in _routes_with(HASH_RULE, HASH_VS)["reviews"]:
        _validate(tmp_path, route["route"])


def _validate(tmp_path, route: dict) -> None:
    cluster = route["cluster"]
    bootstrap = {
        "static_resources": {
            "clusters": [
                {
                    "name": cluster,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "lb_policy": "RING_HASH",
                    "load_assignment": {"cluster_name": cluster, "endpoints": []},
                }
            ],
            "listeners": [
                {
                    "name": "l",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
                    "filter_chains": [{"filters": [_connection_manager(route)]}],
                }
            ],
        }
    }
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(bootstrap))
    result = subprocess.run(
        [envoy_path(), "--mode", "validate", "-c", str(config), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, textwrap.shorten(result.stdout + result.stderr, 2000)
