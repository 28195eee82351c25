"""The OpenAPI documents as kubectl fetches them: v2 as protobuf, the v3 index and documents."""

from __future__ import annotations

import aiohttp
import yaml

from api.openapi.v2 import openapiv2_pb2
from pilot.configstore.server import ConfigStoreServer
from pilot.configstore.server_test import call, run

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def test_v2_as_kubectl_reads_it(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        async with http.get("/openapi/v2", headers={"Accept": PROTOBUF}) as response:
            assert response.status == 200
            # A media type Go's mime package parses (kubectl refuses the spelling with @).
            assert response.headers["Content-Type"] == (
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            )
            document = openapiv2_pb2.Document.FromString(await response.read())
        assert document.swagger == "2.0"
        models = {d.name: d.value for d in document.definitions.additional_properties}
        for version in ("v1", "v1beta1", "v1alpha3"):
            model = models[f"io.istio.networking.{version}.VirtualService"]
            extensions = {e.name: yaml.safe_load(e.value.yaml) for e in model.vendor_extension}
            assert extensions["x-kubernetes-group-version-kind"] == [
                {"group": "networking.istio.io", "kind": "VirtualService", "version": version}
            ]
            properties = {p.name: p.value for p in model.properties.additional_properties}
            assert properties["metadata"]._ref == (
                "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
            )
            assert list(properties["spec"].type.value) == ["object"]
        assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in models
        # Every reference resolves (kubectl refuses a document with a dangling one).
        refs = _refs(document)
        assert refs
        assert all(r.removeprefix("#/definitions/") in models for r in refs)
        patch = next(
            p.value.patch
            for p in document.paths.path
            if p.name
            == "/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices/{name}"
        )
        # No strategic merge patch for custom resources: kubectl apply sends a merge patch.
        assert list(patch.consumes) == [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
        code, as_json = await call(http, "GET", "/openapi/v2")
        assert code == 200
        assert as_json["swagger"] == "2.0"

    run(tmp_path / "db", scenario)


def _refs(document: openapiv2_pb2.Document) -> set[str]:
    found: set[str] = set()

    def walk(schema: openapiv2_pb2.Schema) -> None:
        if schema._ref:
            found.add(schema._ref)
        for p in schema.properties.additional_properties:
            walk(p.value)
        for item in schema.items.schema:
            walk(item)
        if schema.additional_properties.HasField("schema"):
            walk(schema.additional_properties.schema)

    for definition in document.definitions.additional_properties:
        walk(definition.value)
    return found


def test_v3_index_and_group_documents(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        code, index = await call(http, "GET", "/openapi/v3")
        assert code == 200
        entry = index["paths"]["apis/networking.istio.io/v1beta1"]
        assert entry["serverRelativeURL"].startswith(
            "/openapi/v3/apis/networking.istio.io/v1beta1?hash="
        )
        code, document = await call(http, "GET", entry["serverRelativeURL"])
        assert code == 200
        assert document["openapi"] == "3.0.0"
        schemas = document["components"]["schemas"]
        model = schemas["io.istio.networking.v1beta1.DestinationRule"]
        assert model["x-kubernetes-group-version-kind"] == [
            {"group": "networking.istio.io", "kind": "DestinationRule", "version": "v1beta1"}
        ]
        assert model["properties"]["spec"]["properties"]["host"]["type"] == "string"
        path = "/apis/networking.istio.io/v1beta1/namespaces/{namespace}/destinationrules/{name}"
        patch = document["paths"][path]["patch"]
        assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
        # Not advertised, so kubectl validates with the schemas itself before sending.
        assert "fieldValidation" not in {p["name"] for p in patch["parameters"]}
        code, _ = await call(http, "GET", "/openapi/v3/apis/networking.istio.io/v9")
        assert code == 404

    run(tmp_path / "db", scenario)
