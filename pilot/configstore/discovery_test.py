"""Discovery documents: classic and aggregated, with and without a trailing slash."""

from __future__ import annotations

import aiohttp

from pilot.configstore.server import ConfigStoreServer
from pilot.configstore.server_test import call, run

AGGREGATED = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)


def test_classic_discovery_with_and_without_a_trailing_slash(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        for suffix in ("", "/"):
            code, version = await call(http, "GET", "/version" + suffix)
            assert code == 200
            assert (version["major"], version["minor"]) == ("1", "32")
            code, groups = await call(http, "GET", "/apis" + suffix)
            assert code == 200
            assert groups["kind"] == "APIGroupList"
            code, group = await call(http, "GET", "/apis/security.istio.io" + suffix)
            assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
            assert group["preferredVersion"] == {
                "groupVersion": "security.istio.io/v1",
                "version": "v1",
            }
            code, listed = await call(http, "GET", "/apis/networking.istio.io/v1alpha3" + suffix)
            assert listed["groupVersion"] == "networking.istio.io/v1alpha3"
            vs = next(r for r in listed["resources"] if r["name"] == "virtualservices")
            assert vs["categories"] == ["istio-io", "networking-istio-io"]
            assert vs["shortNames"] == ["vs"]
            code, core = await call(http, "GET", "/api" + suffix)
            assert (code, core["kind"], core["versions"]) == (200, "APIVersions", ["v1"])
        code, _ = await call(http, "GET", "/apis/nothing.io")
        assert code == 404
        code, _ = await call(http, "GET", "/apis/networking.istio.io/v2")
        assert code == 404

    run(tmp_path / "db", scenario)


def test_aggregated_discovery_when_asked_for(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        async with http.get("/apis", headers={"Accept": AGGREGATED}) as response:
            assert response.headers["Content-Type"] == (
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            )
            body = await response.json(content_type=None)
        assert (body["kind"], body["apiVersion"]) == (
            "APIGroupDiscoveryList",
            "apidiscovery.k8s.io/v2",
        )
        groups = {g["metadata"]["name"]: g for g in body["items"]}
        networking = groups["networking.istio.io"]
        assert [v["version"] for v in networking["versions"]] == ["v1", "v1beta1", "v1alpha3"]
        v1 = networking["versions"][0]
        assert v1["freshness"] == "Current"
        vs = next(r for r in v1["resources"] if r["resource"] == "virtualservices")
        assert vs == {
            "resource": "virtualservices",
            "responseKind": {
                "group": "networking.istio.io",
                "version": "v1",
                "kind": "VirtualService",
            },
            "scope": "Namespaced",
            "singularResource": "virtualservice",
            "verbs": [
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ],
            "shortNames": ["vs"],
            "categories": ["istio-io", "networking-istio-io"],
        }
        async with http.get("/api", headers={"Accept": AGGREGATED}) as response:
            core = await response.json(content_type=None)
        assert core["kind"] == "APIGroupDiscoveryList"
        (legacy,) = core["items"]
        resources = {r["resource"]: r for r in legacy["versions"][0]["resources"]}
        assert resources["namespaces"]["scope"] == "Cluster"
        assert resources["pods"]["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
        assert {s["subresource"] for s in resources["pods"]["subresources"]} == {
            "status",
            "log",
            "exec",
            "binding",
        }
        # A client that prefers plain JSON gets the classic document.
        _, plain = await call(http, "GET", "/apis", headers={"Accept": "application/json"})
        assert plain["kind"] == "APIGroupList"

    run(tmp_path / "db", scenario)
