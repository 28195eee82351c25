"""The official `kubernetes` Python client against a store started as its own process.

Configured from the kubeconfig the store's users get (pkg/kube/kubeconfig.py); one store serves
the module and every test works in a namespace of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from kubernetes import client

from pilot.configstore.testing import StoreProcess, WatchRecorder, namespace_for, stored_rows
from pkg.kube.kubeconfig import write_kubeconfig

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreProcess]:
    with StoreProcess(tmp_path_factory.mktemp("store") / "config.db") as process:
        yield process


@pytest.fixture(scope="module")
def api(
    store: StoreProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[client.ApiClient]:
    kubeconfig = write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", store.url)
    with kubernetes.config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
        yield api_client


@pytest.fixture
def objects(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    return namespace_for(request.node.name)


def vs(name: str, labels: dict[str, str] | None = None, subset: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name, "subset": subset}}]}],
        },
    }


def create(objects: client.CustomObjectsApi, ns: str, body: dict[str, Any], **kw: Any) -> Any:
    return objects.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body, **kw)


def listed(objects: client.CustomObjectsApi, ns: str, **selectors: str) -> set[str]:
    found = objects.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, **selectors)
    return {item["metadata"]["name"] for item in found["items"]}


def test_version_and_api_groups_answer_at_the_clients_paths(api: client.ApiClient):
    version = client.VersionApi(api).get_code()  # GET /version/
    assert (version.major, version.minor) == ("1", "32")
    groups = client.ApisApi(api).get_api_versions()  # GET /apis/
    by_name = {g.name: g for g in groups.groups}
    networking = by_name["networking.istio.io"]
    assert [v.version for v in networking.versions] == ["v1", "v1beta1", "v1alpha3"]
    assert networking.preferred_version.version == "v1"
    assert [v.version for v in by_name["security.istio.io"].versions] == ["v1", "v1beta1"]
    resources = client.CustomObjectsApi(api).get_api_resources(GROUP, "v1beta1")
    vs_resource = next(r for r in resources.resources if r.name == PLURAL)
    assert (vs_resource.kind, vs_resource.namespaced, vs_resource.short_names) == (
        "VirtualService",
        True,
        ["vs"],
    )
    assert "deletecollection" in vs_resource.verbs


def test_selectors_on_list_and_delete_collection(
    objects: client.CustomObjectsApi, store: StoreProcess, ns: str
):
    create(objects, ns, vs("a", {"app": "reviews", "version": "v1"}))
    create(objects, ns, vs("b", {"app": "reviews", "version": "v2"}))
    create(objects, ns, vs("c", {"app": "ratings"}))
    assert listed(objects, ns, label_selector="app=reviews") == {"a", "b"}
    assert listed(objects, ns, label_selector="version notin (v1)") == {"b", "c"}
    assert listed(objects, ns, label_selector="!version") == {"c"}
    assert listed(objects, ns, field_selector="metadata.name!=b") == {"a", "c"}
    everywhere = objects.list_cluster_custom_object(
        GROUP, VERSION, PLURAL, label_selector="app=ratings"
    )
    assert {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]} >= {
        (ns, "c")
    }
    with pytest.raises(client.ApiException) as refused:
        listed(objects, ns, label_selector="app in")
    assert refused.value.status == 400

    deleted = objects.delete_collection_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, label_selector="app=reviews"
    )
    assert deleted["kind"] == "VirtualServiceList"
    assert sorted(i["metadata"]["name"] for i in deleted["items"]) == ["a", "b"]
    assert listed(objects, ns) == {"c"}
    assert stored_rows(store.db, ns) == [("VirtualService", "c")]


def test_watch_with_a_selector_sees_objects_enter_and_leave_it(
    objects: client.CustomObjectsApi, store: StoreProcess, ns: str
):
    path = (
        f"{store.url}/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}?labelSelector=app%3Dreviews"
    )
    with WatchRecorder(path) as watch:
        create(objects, ns, vs("other"))
        create(objects, ns, vs("a", {"app": "reviews"}))
        relabel = {"metadata": {"labels": {"app": "ratings"}}}
        objects.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "a", relabel)
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "other", {"metadata": {"labels": {"app": "reviews"}}}
        )
        events = watch.wait_for(lambda e: e["object"]["metadata"]["name"] == "other")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("DELETED", "a"),  # relabeled out of the selection
        ("ADDED", "other"),  # relabeled into it
    ]


def test_dry_runs_store_nothing_and_send_no_event(
    objects: client.CustomObjectsApi, store: StoreProcess, ns: str
):
    kept = create(objects, ns, vs("kept"))
    version = kept["metadata"]["resourceVersion"]
    path = f"{store.url}/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}"
    with WatchRecorder(path) as watch:
        watch.wait_for(lambda e: e["object"]["metadata"]["name"] == "kept")
        would = create(objects, ns, vs("new"), dry_run="All")
        # The answer a real create would give, but no version was spent on it.
        assert would["metadata"]["name"] == "new"
        assert would["metadata"]["uid"]
        assert "resourceVersion" not in would["metadata"]
        changed = vs("kept", subset="v2")
        changed["metadata"]["resourceVersion"] = version
        replaced = objects.replace_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "kept", changed, dry_run="All"
        )
        assert replaced["spec"]["http"][0]["route"][0]["destination"]["subset"] == "v2"
        assert replaced["metadata"]["resourceVersion"] == version
        assert replaced["metadata"]["generation"] == 2
        patched = objects.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "kept", {"spec": {"gateways": ["mesh"]}}, dry_run="All"
        )
        assert patched["spec"]["gateways"] == ["mesh"]
        objects.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "kept", dry_run="All")
        objects.delete_collection_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, dry_run="All"
        )
        with pytest.raises(client.ApiException) as refused:
            create(objects, ns, vs("bad"), dry_run="Some")
        assert refused.value.status == 422
        assert json.loads(refused.value.body)["message"] == (
            'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
            '[]string{"Some"}: supported values: "All"'
        )
        # Invalid objects are refused on a dry run exactly as on a real write.
        broken = vs("broken")
        broken["spec"]["http"][0]["timeout"] = "soon"
        with pytest.raises(client.ApiException) as invalid:
            create(objects, ns, broken, dry_run="All")
        assert invalid.value.status == 422

        assert objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "kept") == kept
        assert stored_rows(store.db, ns) == [("VirtualService", "kept")]
        create(objects, ns, vs("sentinel"))
        events = watch.wait_for(lambda e: e["object"]["metadata"]["name"] == "sentinel")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "kept"),
        ("ADDED", "sentinel"),
    ]
    # Nothing else writes meanwhile: the dry runs spent no resourceVersion.
    assert int(events[-1]["object"]["metadata"]["resourceVersion"]) == int(version) + 1


def test_delete_preconditions(objects: client.CustomObjectsApi, ns: str):
    kept = create(objects, ns, vs("kept"))
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1"))
    with pytest.raises(client.ApiException) as refused:
        objects.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "kept", body=stale)
    assert refused.value.status == 409
    assert (
        "Precondition failed: ResourceVersion in precondition: 1"
        in json.loads(refused.value.body)["message"]
    )
    current = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=kept["metadata"]["uid"])
    )
    objects.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "kept", body=current)
    assert listed(objects, ns) == set()


APPLY = "application/apply-patch+yaml"


def test_patches_by_content_type(objects: client.CustomObjectsApi, ns: str):
    create(objects, ns, vs("reviews"))
    patched = objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        "reviews",
        [{"op": "add", "path": "/spec/gateways", "value": ["mesh"]}],
        _content_type="application/json-patch+json",
    )
    assert patched["spec"]["gateways"] == ["mesh"]
    with pytest.raises(client.ApiException) as strategic:
        objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            PLURAL,
            "reviews",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert strategic.value.status == 415
    # Server-side apply: the first apply creates, a second manager conflicts, force takes.
    created = objects.patch_namespaced_custom_object_with_http_info(
        GROUP, VERSION, ns, PLURAL, "ratings", vs("ratings"), field_manager="a", _content_type=APPLY
    )
    assert (
        created[1] == 201
    )  # (data, status, headers): an apply that creates answers Created, as Kubernetes'
    applied = objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "ratings")
    assert [m["manager"] for m in applied["metadata"]["managedFields"]] == ["a"]
    with pytest.raises(client.ApiException) as conflict:
        objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            PLURAL,
            "ratings",
            vs("ratings", subset="v2"),
            field_manager="b",
            _content_type=APPLY,
        )
    status = json.loads(conflict.value.body)
    assert (conflict.value.status, status["reason"]) == (409, "Conflict")
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "a": .spec.http'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "a"', "field": ".spec.http"}
    ]
    forced = objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        "ratings",
        vs("ratings", subset="v2"),
        field_manager="b",
        force=True,
        _content_type=APPLY,
    )
    entries = {m["manager"]: m["fieldsV1"] for m in forced["metadata"]["managedFields"]}
    assert entries == {
        "a": {"f:spec": {"f:hosts": {}}},
        "b": {"f:spec": {"f:hosts": {}, "f:http": {}}},
    }
    with pytest.raises(client.ApiException) as no_manager:
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "ratings", vs("ratings"), _content_type=APPLY
        )
    assert no_manager.value.status == 422
    assert "fieldManager: Required value" in json.loads(no_manager.value.body)["message"]


def test_one_object_at_every_served_version(
    objects: client.CustomObjectsApi, store: StoreProcess, ns: str
):
    created = create(objects, ns, vs("reviews"))
    path = f"{store.url}/apis/{GROUP}/v1beta1/namespaces/{ns}/{PLURAL}"
    with WatchRecorder(path) as watch:
        for version in ("v1alpha3", "v1beta1"):
            read = objects.get_namespaced_custom_object(GROUP, version, ns, PLURAL, "reviews")
            assert read["apiVersion"] == f"{GROUP}/{version}"
            assert (read["metadata"], read["spec"]) == (created["metadata"], created["spec"])
        # Written at v1alpha3, read at v1 and watched at v1beta1.
        older = objects.get_namespaced_custom_object(GROUP, "v1alpha3", ns, PLURAL, "reviews")
        older["spec"]["gateways"] = ["mesh"]
        objects.replace_namespaced_custom_object(GROUP, "v1alpha3", ns, PLURAL, "reviews", older)
        events = watch.wait_for(lambda e: e["type"] == "MODIFIED")
    assert {e["object"]["apiVersion"] for e in events} == {f"{GROUP}/v1beta1"}
    now = objects.get_namespaced_custom_object(GROUP, "v1", ns, PLURAL, "reviews")
    assert now["spec"]["gateways"] == ["mesh"]
    # managedFields remember the version each manager wrote at.
    assert {m["apiVersion"] for m in now["metadata"]["managedFields"]} == {
        f"{GROUP}/v1",
        f"{GROUP}/v1alpha3",
    }
    with pytest.raises(client.ApiException) as mismatch:
        create(objects, ns, {**vs("x"), "apiVersion": f"{GROUP}/v1alpha3"})
    assert mismatch.value.status == 400  # posted to the v1 path


def test_a_replace_without_a_resource_version_is_refused(objects: client.CustomObjectsApi, ns: str):
    create(objects, ns, vs("reviews"))
    with pytest.raises(client.ApiException) as refused:
        objects.replace_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "reviews", vs("reviews", subset="v2")
        )
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["message"] == (
        'virtualservices.networking.istio.io "reviews" is invalid: metadata.resourceVersion: '
        "Invalid value: 0x0: must be specified for an update"
    )
