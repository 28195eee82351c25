"""The real kubectl against a store started as its own process: what users type, as they type it.

One store serves the module; every test works in a namespace of its own.
"""

from __future__ import annotations

import json
import pathlib
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from pilot.configstore.testing import (
    Kubectl,
    StoreProcess,
    WatchRecorder,
    namespace_for,
    stored_rows,
)

ROOT = pathlib.Path(__file__).absolute().parents[2]
SAMPLES = ROOT / "samples" / "bookinfo" / "networking"
GROUP = "/apis/networking.istio.io/v1"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreProcess]:
    directory = tmp_path_factory.mktemp("store")
    with StoreProcess(directory / "config.db") as process:
        yield process


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    return namespace_for(request.node.name)


@pytest.fixture
def kubectl(store: StoreProcess, tmp_path: pathlib.Path, ns: str) -> Kubectl:
    return Kubectl(store.url, tmp_path / "home", namespace=ns)


def vs(name: str, labels: dict[str, str] | None = None, subset: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name, "subset": subset}}]}],
        },
    }


def documents(*objects: dict[str, Any]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def names(kubectl: Kubectl, *args: str) -> set[str]:
    out = kubectl.run("get", *args, "-o", "name").stdout
    return {line.split("/", 1)[1] for line in out.split()}


def get(store: StoreProcess, path: str) -> Any:
    with urllib.request.urlopen(store.url + path, timeout=10) as response:
        return json.load(response)


def store_version(store: StoreProcess) -> str:
    return get(store, f"{GROUP}/virtualservices")["metadata"]["resourceVersion"]


def rows(store: StoreProcess, namespace: str) -> list[tuple[str, str]]:
    return stored_rows(store.db, namespace)


def labeled(kubectl: Kubectl) -> None:
    kubectl.run(
        "apply",
        "-f",
        "-",
        input=documents(
            vs("a", {"app": "reviews", "version": "v1"}),
            vs("b", {"app": "reviews", "version": "v2"}),
            vs("c", {"app": "ratings", "canary": "true"}),
            vs("d"),
        ),
    )


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=reviews", {"a", "b"}),
        ("app==reviews", {"a", "b"}),
        ("app!=reviews", {"c", "d"}),
        ("version in (v1,v3)", {"a"}),
        ("version notin (v1)", {"b", "c", "d"}),
        ("canary", {"c"}),
        ("!canary", {"a", "b", "d"}),
        ("app=reviews,version=v2", {"b"}),
        ("app=nomatch", set()),
    ],
)
def test_get_with_each_label_selector_form(kubectl: Kubectl, selector: str, expected: set[str]):
    labeled(kubectl)
    assert names(kubectl, "virtualservices", "-l", selector) == expected


def test_field_selectors_and_every_namespace(kubectl: Kubectl, ns: str):
    labeled(kubectl)
    kubectl.run(
        "apply",
        "-n",
        f"{ns}-2",
        "-f",
        "-",
        input=documents(vs("a", {"app": "reviews"})),
    )
    assert names(kubectl, "vs", "--field-selector", "metadata.name=a") == {"a"}
    assert names(kubectl, "vs", "--field-selector", "metadata.name!=a") == {"b", "c", "d"}
    every = kubectl.run("get", "vs", "-A", "-l", "app=reviews", "-o", "json").stdout
    found = {
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in json.loads(every)["items"]
    }
    mine = {(namespace, name) for namespace, name in found if namespace.startswith(ns)}
    assert mine == {(ns, "a"), (ns, "b"), (f"{ns}-2", "a")}  # other tests' are there too
    second = kubectl.run(
        "get", "vs", "-A", "--field-selector", f"metadata.namespace={ns}-2", "-o", "name"
    )
    assert second.stdout.split() == ["virtualservice.networking.istio.io/a"]
    refused = kubectl.run("get", "vs", "--field-selector", "spec.hosts=a", check=False)
    assert refused.returncode != 0
    assert (
        '"spec.hosts" is not a known field selector: only "metadata.name", "metadata.namespace"'
        in refused.stderr
    )


def test_delete_with_a_selector_deletes_exactly_the_matches(
    kubectl: Kubectl, store: StoreProcess, ns: str
):
    labeled(kubectl)
    nothing = kubectl.run("delete", "vs", "-l", "app=nomatch")
    assert "No resources found" in nothing.stdout + nothing.stderr
    assert names(kubectl, "vs") == {"a", "b", "c", "d"}
    deleted = kubectl.run("delete", "vs", "-l", "app=reviews").stdout
    assert sorted(deleted.splitlines()) == [
        'virtualservice.networking.istio.io "a" deleted',
        'virtualservice.networking.istio.io "b" deleted',
    ]
    assert names(kubectl, "vs") == {"c", "d"}
    assert rows(store, ns) == [("VirtualService", "c"), ("VirtualService", "d")]


def test_server_dry_runs_change_nothing(kubectl: Kubectl, store: StoreProcess, ns: str):
    kubectl.run("apply", "-f", "-", input=documents(vs("kept")))
    before = get(store, f"{GROUP}/namespaces/{ns}/virtualservices/kept")
    version = store_version(store)
    with WatchRecorder(f"{store.url}{GROUP}/namespaces/{ns}/virtualservices") as watch:
        watch.wait_for(lambda e: e["object"]["metadata"]["name"] == "kept")
        created = kubectl.run(
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            input=documents(vs("new")),
            check=True,
        )
        assert created.stdout.strip() == (
            "virtualservice.networking.istio.io/new created (server dry run)"
        )
        changed = kubectl.run(
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            input=documents(vs("kept", subset="v2")),
        )
        assert "configured (server dry run)" in changed.stdout
        kubectl.run("create", "--dry-run=server", "-f", "-", input=documents(vs("other")))
        kubectl.run(
            "patch",
            "vs",
            "kept",
            "--dry-run=server",
            "--type=merge",
            "-p",
            '{"spec":{"gateways":["mesh"]}}',
        )
        kubectl.run(
            "replace",
            "--dry-run=server",
            "-f",
            "-",
            input=documents(vs("kept", subset="v3")),
        )
        deleted = kubectl.run("delete", "vs", "kept", "--dry-run=server").stdout
        assert (
            deleted.strip() == 'virtualservice.networking.istio.io "kept" deleted (server dry run)'
        )
        kubectl.run("delete", "vs", "--all", "--dry-run=server")

        assert get(store, f"{GROUP}/namespaces/{ns}/virtualservices/kept") == before
        assert store_version(store) == version
        assert rows(store, ns) == [("VirtualService", "kept")]
        # The first event after the dry runs is the real write made now: they sent none.
        kubectl.run("apply", "-f", "-", input=documents(vs("sentinel")))
        events = watch.wait_for(lambda e: e["object"]["metadata"]["name"] == "sentinel")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "kept"),
        ("ADDED", "sentinel"),
    ]


def test_diff_shows_the_change_and_leaves_the_object(
    kubectl: Kubectl, store: StoreProcess, ns: str
):
    kubectl.run("apply", "-f", "-", input=documents(vs("reviews")))
    before = get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews")
    version = store_version(store)
    same = kubectl.run("diff", "-f", "-", input=documents(vs("reviews")))
    assert same.stdout == ""
    changed = kubectl.run(
        "diff", "-f", "-", input=documents(vs("reviews", subset="v2")), check=False
    )
    assert changed.returncode == 1, changed.stderr  # 1: there are differences
    assert re.search(r"^-\s+subset: v1$", changed.stdout, re.M), changed.stdout
    assert re.search(r"^\+\s+subset: v2$", changed.stdout, re.M), changed.stdout
    assert get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews") == before
    assert store_version(store) == version
    new = kubectl.run("diff", "-f", "-", input=documents(vs("ratings")), check=False)
    assert new.returncode == 1
    assert re.search(r"^\+\s+name: ratings$", new.stdout, re.M), new.stdout
    assert rows(store, ns) == [("VirtualService", "reviews")]


def managers(store: StoreProcess, ns: str, name: str) -> dict[str, set[str]]:
    """Each manager of the object and the top-level spec fields it owns."""
    obj = get(store, f"{GROUP}/namespaces/{ns}/virtualservices/{name}")
    return {
        f"{e['manager']}/{e['operation']}": {
            key[2:] for key in e["fieldsV1"].get("f:spec", {}) if key.startswith("f:")
        }
        for e in obj["metadata"].get("managedFields", [])
    }


def test_server_side_apply_with_two_managers_and_a_conflict(
    kubectl: Kubectl, store: StoreProcess, ns: str
):
    def apply(manager: str, obj: dict[str, Any], *extra: str) -> Any:
        return kubectl.run(
            "apply",
            "--server-side",
            f"--field-manager={manager}",
            *extra,
            "-f",
            "-",
            input=documents(obj),
            check=False,
        )

    first = apply("alice", vs("reviews"))
    assert first.stdout.strip() == "virtualservice.networking.istio.io/reviews serverside-applied"
    # Bob applies the same routes and adds gateways: no conflict, the routes are co-owned.
    shared = vs("reviews")
    shared["spec"]["gateways"] = ["mesh"]
    assert apply("bob", shared).returncode == 0
    assert managers(store, ns, "reviews") == {
        "alice/Apply": {"hosts", "http"},
        "bob/Apply": {"gateways", "hosts", "http"},
    }
    # Bob changes the routes Alice also owns: a conflict, and nothing changes.
    before = get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews")
    conflicting = vs("reviews", subset="v2")
    conflicting["spec"]["gateways"] = ["mesh"]
    refused = apply("bob", conflicting)
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "alice": .spec.http' in refused.stderr
    assert "--force-conflicts" in refused.stderr  # kubectl recognised the conflict's causes
    assert get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews") == before
    # Forced, Bob takes the routes; Alice keeps only what nobody changed.
    assert apply("bob", conflicting, "--force-conflicts").returncode == 0
    assert managers(store, ns, "reviews") == {
        "alice/Apply": {"hosts"},
        "bob/Apply": {"gateways", "hosts", "http"},
    }
    got = get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews")
    assert got["spec"]["http"][0]["route"][0]["destination"]["subset"] == "v2"
    # Bob stops applying gateways: they go, as nobody else owns them.
    assert apply("bob", vs("reviews", subset="v2")).returncode == 0
    assert "gateways" not in get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews")["spec"]
    # An update by kubectl patch takes the field from the appliers, and names itself so.
    kubectl.run("patch", "vs", "reviews", "--type=merge", "-p", '{"spec":{"hosts":["r2"]}}')
    again = apply("alice", vs("reviews", subset="v2"))
    assert again.returncode == 1
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-patch" using '
        "networking.istio.io/v1: .spec.hosts"
    ) in again.stderr


def test_json_patch(kubectl: Kubectl, store: StoreProcess, ns: str):
    kubectl.run("apply", "-f", "-", input=documents(vs("reviews")))
    patch = json.dumps(
        [
            {"op": "add", "path": "/spec/gateways", "value": ["mesh"]},
            {"op": "replace", "path": "/spec/http/0/route/0/destination/subset", "value": "v3"},
            {"op": "add", "path": "/metadata/labels", "value": {"app": "reviews"}},
        ]
    )
    kubectl.run("patch", "vs", "reviews", "--type=json", "-p", patch)
    got = get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews")
    assert got["spec"]["gateways"] == ["mesh"]
    assert got["spec"]["http"][0]["route"][0]["destination"]["subset"] == "v3"
    assert got["metadata"]["labels"] == {"app": "reviews"}
    failed = kubectl.run(
        "patch",
        "vs",
        "reviews",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/gateways"},{"op":"test","path":"/spec/hosts/0","value":"x"}]',
        check=False,
    )
    assert failed.returncode == 1
    assert "the JSON patch does not apply" in failed.stderr
    # All or nothing: the remove before the failed test did not happen.
    assert get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews") == got
    invalid = kubectl.run(
        "patch",
        "vs",
        "reviews",
        "--type=json",
        "-p",
        '[{"op":"add","path":"/spec/http/0/timeout","value":"soon"}]',
        check=False,
    )
    assert invalid.returncode == 1
    assert "spec.http[0].timeout" in invalid.stderr
    strategic = kubectl.run(
        "patch", "vs", "reviews", "--type=strategic", "-p", '{"spec":{}}', check=False
    )
    assert strategic.returncode == 1
    assert (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    ) in strategic.stderr


def test_apply_validates_on_kubectls_side_from_the_openapi(
    kubectl: Kubectl, store: StoreProcess, ns: str
):
    sample = (SAMPLES / "virtual-service-all-v1.yaml").read_text()
    applied = kubectl.run("apply", "-f", "-", input=sample)
    assert "virtualservice.networking.istio.io/reviews created" in applied.stdout
    misspelt = sample.replace("subset: v1", "subsett: v1", 1)
    refused = kubectl.run(
        "apply", "-f", "-", input=misspelt.replace("productpage", "other"), check=False
    )
    assert refused.returncode == 1
    assert 'unknown field "subsett"' in refused.stderr
    assert "error validating data" in refused.stderr  # kubectl's own check, before any request
    assert ("VirtualService", "other") not in rows(store, ns)


def test_explain_prints_the_proto_comments(kubectl: Kubectl):
    # kubectl 1.27+ explains from /openapi/v3 (FIELD:), older ones from /openapi/v2 (RESOURCE:).
    http = kubectl.run("explain", "virtualservice.spec.http").stdout
    assert re.search(r"^KIND:\s+VirtualService$", http, re.M)
    assert re.search(r"^VERSION:\s+(networking\.istio\.io/)?v1$", http, re.M)
    assert re.search(r"^(FIELD|RESOURCE): http <\[\]Object>$", http, re.M)
    assert "Ordered HTTP rules; first match wins." in http
    assert re.search(r"^  match\s+<\[\]Object>$", http, re.M)
    assert "OR-ed list of match blocks." in http
    hosts = kubectl.run("explain", "vs.spec.hosts").stdout
    assert re.search(r"^(FIELD|FIELDS?): hosts <\[\]string>$", hosts, re.M), hosts
    assert "Destination hosts (DNS names, optionally wildcarded, or IPs)." in hosts
    older = kubectl.run("explain", "destinationrules", "--api-version=networking.istio.io/v1alpha3")
    assert re.search(r"^VERSION:\s+(networking\.istio\.io/)?v1alpha3$", older.stdout, re.M)
    assert re.search(r"^  spec\s+<Object>$", older.stdout, re.M)


def test_edit(kubectl: Kubectl, store: StoreProcess, ns: str, tmp_path: pathlib.Path):
    kubectl.run("apply", "-f", "-", input=documents(vs("reviews")))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/subset: v1/subset: v2/' \"$1\"\n")
    editor.chmod(0o755)
    edited = kubectl.run("edit", "vs", "reviews", env={"EDITOR": str(editor)})
    assert edited.stdout.strip() == "virtualservice.networking.istio.io/reviews edited"
    got = get(store, f"{GROUP}/namespaces/{ns}/virtualservices/reviews")
    assert got["spec"]["http"][0]["route"][0]["destination"]["subset"] == "v2"
    assert "kubectl-edit" in {m["manager"] for m in got["metadata"]["managedFields"]}


def test_a_v1_document_reads_back_at_every_version(kubectl: Kubectl):
    kubectl.run("apply", "-f", "-", input=documents(vs("reviews", {"app": "reviews"})))
    stored = json.loads(
        kubectl.run("get", "virtualservices.v1.networking.istio.io", "reviews", "-o", "json").stdout
    )
    for version in ("v1alpha3", "v1beta1"):
        out = kubectl.run(
            "get", f"virtualservices.{version}.networking.istio.io", "reviews", "-o", "json"
        ).stdout
        read = json.loads(out)
        assert read["apiVersion"] == f"networking.istio.io/{version}"
        assert read["spec"] == stored["spec"]
        assert read["metadata"]["uid"] == stored["metadata"]["uid"]
    # And the other way: a v1beta1 security document, read at v1.
    policy = {
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default"},
        "spec": {"mtls": {"mode": "STRICT"}},
    }
    kubectl.run("apply", "-f", "-", input=documents(policy))
    read = json.loads(
        kubectl.run(
            "get", "peerauthentications.v1.security.istio.io", "default", "-o", "json"
        ).stdout
    )
    assert (read["apiVersion"], read["spec"]) == (
        "security.istio.io/v1",
        {"mtls": {"mode": "STRICT"}},
    )


def test_get_shows_istios_columns(kubectl: Kubectl, ns: str):
    gateway = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
            ],
        },
    }
    routed = vs("reviews")
    routed["spec"]["gateways"] = ["gw", "mesh"]
    entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "httpbin"},
        "spec": {
            "hosts": ["httpbin.org"],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
        },
    }
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews"},
        "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    }
    kubectl.run("apply", "-f", "-", input=documents(gateway, routed, entry, rule))

    def table(*args: str) -> list[list[str]]:
        return [
            re.split(r"\s{2,}", line.strip())
            for line in kubectl.run("get", *args).stdout.splitlines()
        ]

    header, row = table("vs")
    assert header == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert row[:3] == ["reviews", '["gw","mesh"]', '["reviews"]']
    assert re.fullmatch(r"\d+s", row[3])  # an age, as kubectl shows one
    header, row = table("dr")
    assert (header, row[:2]) == (["NAME", "HOST", "AGE"], ["reviews", "reviews"])
    assert table("gateway")[0] == ["NAME", "AGE"]
    assert table("se")[0] == ["NAME", "HOSTS", "LOCATION", "RESOLUTION", "AGE"]
    assert table("se")[1][:4] == ["httpbin", '["httpbin.org"]', "MESH_EXTERNAL", "DNS"]
    everywhere = table("vs", "-A", "--field-selector", f"metadata.namespace={ns}")
    assert everywhere[0] == ["NAMESPACE", "NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert everywhere[1][:2] == [ns, "reviews"]
    by_category = kubectl.run("get", "istio-io", "-o", "name").stdout.split()
    assert set(by_category) >= {
        "virtualservice.networking.istio.io/reviews",
        "gateway.networking.istio.io/gw",
        "serviceentry.networking.istio.io/httpbin",
        "destinationrule.networking.istio.io/reviews",
    }


def test_create_with_generate_name(kubectl: Kubectl, ns: str):
    generated = vs("unused")
    generated["metadata"] = {"generateName": "reviews-"}
    made = kubectl.run("create", "-f", "-", input=documents(generated)).stdout.strip()
    assert re.fullmatch(r"virtualservice\.networking\.istio\.io/reviews-[a-z0-9]{5} created", made)
