"""Reading -f: files, directories, stdin; delete -f reads headers only."""

from __future__ import annotations

import io
import json

import pytest

from istioctl.resources import sources
from pkg.config import loader


def vs(name: str, **meta: str) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": name, **meta},
        "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name}}]}]},
    }


def test_a_directory_means_its_yaml_and_json_files_in_order(tmp_path):
    (tmp_path / "b.yaml").write_text(json.dumps(vs("b")))  # JSON is YAML too
    (tmp_path / "a.yml").write_text(json.dumps(vs("a")))
    (tmp_path / "c.json").write_text(json.dumps(vs("c")))
    (tmp_path / "notes.txt").write_text("not config")
    found = sources.read_sources([str(tmp_path)], io.StringIO())
    assert [s.name for s in found] == [str(tmp_path / n) for n in ("a.yml", "b.yaml", "c.json")]
    resources = sources.load_resources(found, "bookinfo")
    assert [(r.metadata.namespace, r.metadata.name) for r in resources] == [
        ("bookinfo", "a"),
        ("bookinfo", "b"),
        ("bookinfo", "c"),
    ]


def test_every_refused_document_of_every_file_is_reported(tmp_path):
    (tmp_path / "one.yaml").write_text(json.dumps(vs("Bad_Name")))
    (tmp_path / "two.yaml").write_text(json.dumps(vs("ok")) + "\n---\nkind: Nothing\n")
    with pytest.raises(loader.LoadError) as refused:
        sources.load_resources(sources.read_sources([str(tmp_path)], io.StringIO()), None)
    text = str(refused.value)
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    assert f"{one}: document 1 (VirtualService default/Bad_Name): metadata.name: " in text
    assert f"{two}: document 2: apiVersion: missing" in text


def test_nothing_to_read_is_an_error(tmp_path):
    with pytest.raises(sources.SourceError, match="does not exist"):
        sources.read_sources([str(tmp_path / "nope.yaml")], io.StringIO())
    with pytest.raises(sources.SourceError, match="no YAML or JSON files"):
        sources.read_sources([str(tmp_path)], io.StringIO())
    with pytest.raises(sources.SourceError, match="no objects passed"):
        sources.load_resources(sources.read_sources(["-"], io.StringIO("---\n")), None)


def test_references_need_only_a_known_kind_and_a_name():
    broken = vs("reviews")
    broken["spec"] = {"hosts": 5}  # the loader would refuse this spec; delete -f need not care
    stream = io.StringIO(json.dumps(broken))
    (reference,) = sources.read_references(sources.read_sources(["-"], stream), None)
    assert (reference.schema.kind, reference.namespace, reference.name) == (
        "VirtualService",
        "default",
        "reviews",
    )
    unknown = io.StringIO("apiVersion: v1\nkind: ReplicationController\nmetadata: {name: p}\n")
    with pytest.raises(
        loader.LoadError, match=r"<stdin>: document 1 \(ReplicationController default/p\): kind: "
    ):
        sources.read_references(sources.read_sources(["-"], unknown), None)
    elsewhere = io.StringIO(json.dumps(vs("r", namespace="a")))
    with pytest.raises(loader.LoadError, match=r"metadata\.namespace: is 'a' but the request"):
        sources.read_references(sources.read_sources(["-"], elsewhere), "b")
