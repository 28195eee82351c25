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
# Until the store serves OpenAPI, kubectl cannot validate on its side.
NO_OPENAPI = "--validate=false"


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
        NO_OPENAPI,
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
        NO_OPENAPI,
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
    kubectl.run("apply", NO_OPENAPI, "-f", "-", input=documents(vs("kept")))
    before = get(store, f"{GROUP}/namespaces/{ns}/virtualservices/kept")
    version = store_version(store)
    with WatchRecorder(f"{store.url}{GROUP}/namespaces/{ns}/virtualservices") as watch:
        watch.wait_for(lambda e: e["object"]["metadata"]["name"] == "kept")
        created = kubectl.run(
            "apply",
            NO_OPENAPI,
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
            NO_OPENAPI,
            "--dry-run=server",
            "-f",
            "-",
            input=documents(vs("kept", subset="v2")),
        )
        assert "configured (server dry run)" in changed.stdout
        kubectl.run(
            "create", NO_OPENAPI, "--dry-run=server", "-f", "-", input=documents(vs("other"))
        )
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
            NO_OPENAPI,
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
        kubectl.run("apply", NO_OPENAPI, "-f", "-", input=documents(vs("sentinel")))
        events = watch.wait_for(lambda e: e["object"]["metadata"]["name"] == "sentinel")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "kept"),
        ("ADDED", "sentinel"),
    ]


def test_diff_shows_the_change_and_leaves_the_object(
    kubectl: Kubectl, store: StoreProcess, ns: str
):
    kubectl.run("apply", NO_OPENAPI, "-f", "-", input=documents(vs("reviews")))
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
