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
