"""`istioctl analyze` as a command: formats, thresholds, suppressions, namespaces, exit
status, and the live store (a real one) with files applied over it."""

from __future__ import annotations

import io
import json
import pathlib
import sys

import pytest
import yaml

from istioctl import main as istioctl
from pilot.configstore.testing import StoreThread
from pkg.config import loader
from pkg.kube.syncclient import SyncConfigClient

HERE = pathlib.Path(__file__).parent
TESTDATA = HERE / "testdata"
BOOKINFO = HERE.parents[1] / "samples" / "bookinfo"
FILES = [str(TESTDATA / "services.yaml"), str(TESTDATA / "references.yaml")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = istioctl.main(["analyze", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_and_yaml_carry_istios_fields(capsys):
    code, out, _ = run(capsys, "-k=false", "-o", "json", *FILES)
    assert code == 0  # only the log format judges
    messages = json.loads(out)
    assert len(messages) == 5
    first = messages[0]
    assert list(first) == ["code", "documentationUrl", "level", "message", "origin", "reference"]
    assert first["code"] == "IST0101"
    assert first["level"] == "Error"
    assert first["origin"] == "VirtualService reviews.default"
    assert first["reference"].endswith("testdata/references.yaml:14")
    assert first["documentationUrl"].endswith("/ist0101/?ref=istioctl-analyze")
    assert out.startswith("[\n\t{")  # tab-indented, as Istio's MarshalIndent
    code, out, _ = run(capsys, "--use-kube=false", "-o", "yaml", *FILES)
    assert yaml.safe_load(out) == messages
    code, out, _ = run(capsys, "-k=false", "-o", "json", str(TESTDATA / "services.yaml"))
    assert json.loads(out) == []


def test_thresholds(capsys):
    kubernetes = str(TESTDATA / "kubernetes.yaml")
    code, out, _ = run(capsys, "-k=false", "-A", "--output-threshold", "warning", kubernetes)
    assert code == 0
    assert "IST0102" not in out
    assert "IST0118" not in out
    assert "IST0108" in out
    code, out, err = run(capsys, "-k=false", "-A", "--output-threshold", "ERROR", kubernetes)
    assert (code, out) == (0, "")
    assert "No validation issues found when analyzing all namespaces." in err
    code, _, _ = run(capsys, "-k=false", "-A", "--failure-threshold", "Info", kubernetes)
    assert code == 79
    code, _, err = run(capsys, "-k=false", "--failure-threshold", "fatal", kubernetes)
    assert code == 64
    assert "'fatal' not a valid option, please choose from: ['Info', 'Warning', 'Error']" in err


def test_suppressions_by_flag_and_by_annotation(capsys, tmp_path):
    code, out, err = run(capsys, "-k=false", "-S", "IST0101=VirtualService reviews.default", *FILES)
    assert (code, out) == (0, "")
    code, out, _ = run(capsys, "-k=false", "-S", "IST0101=VirtualService *.default", *FILES)
    assert (code, out) == (0, "")
    code, out, err = run(capsys, "-k=false", "-S", "IST9999=Pod x.default", *FILES)
    assert code == 79
    assert "Warning: Supplied message code 'IST9999' is an unknown message code" in err
    code, _, err = run(capsys, "-k=false", "-S", "IST0101", *FILES)
    assert code == 1
    assert "IST0101 is not a valid suppression value" in err

    annotated = yaml.safe_load((TESTDATA / "references.yaml").read_text())
    annotated["metadata"]["annotations"] = {"galley.istio.io/analyze-suppress": "IST0101"}
    (tmp_path / "vs.yaml").write_text(yaml.safe_dump(annotated))
    code, out, _ = run(capsys, "-k=false", FILES[0], str(tmp_path / "vs.yaml"))
    assert (code, out) == (0, "")


def test_namespaces(capsys, tmp_path):
    placed = yaml.safe_load((TESTDATA / "references.yaml").read_text())
    placed["metadata"]["namespace"] = "shop"
    (tmp_path / "vs.yaml").write_text(yaml.safe_dump(placed))
    code, out, _ = run(capsys, "-k=false", str(tmp_path / "vs.yaml"))
    assert (code, out) == (0, "")  # nothing in namespace default
    code, out, _ = run(capsys, "-k=false", "-n", "shop", str(tmp_path / "vs.yaml"))
    assert code == 79
    assert "(VirtualService reviews.shop" in out
    code, out, _ = run(capsys, "-k=false", "-A", str(tmp_path / "vs.yaml"))
    assert code == 79
    assert "(VirtualService reviews.shop" in out
    # A file's resource without a namespace lands in the one analyzed.
    code, out, _ = run(capsys, "-k=false", "-n", "shop", str(TESTDATA / "references.yaml"))
    assert "(VirtualService reviews.shop" in out


def test_parse_errors_skipped_files_stdin_and_missing_paths(capsys, monkeypatch, tmp_path):
    code, out, err = run(capsys, "-k=false", str(TESTDATA / "unparsable.yaml"))
    assert (code, out) == (65, "")
    assert "Error(s) adding files: 1 error occurred:" in err
    assert "unparsable.yaml: not valid YAML at line 4" in err
    assert "(but 1 file could not be parsed)" in err
    code, _, err = run(capsys, "-k=false", "--ignore-unknown", str(TESTDATA / "unparsable.yaml"))
    assert code == 0
    assert "Error(s)" not in err
    # Issues outrank parse errors.
    code, _, _ = run(capsys, "-k=false", str(TESTDATA / "unparsable.yaml"), *FILES)
    assert code == 79

    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run(capsys, "-k=false", str(tmp_path / "notes.txt"))
    assert code == 0
    assert "Skipping file" in err
    assert "recognized file extensions are: [.json .yaml .yml]" in err

    monkeypatch.setattr(sys, "stdin", io.StringIO((TESTDATA / "schema.yaml").read_text()))
    code, out, _ = run(capsys, "-k=false", "-", FILES[0])
    assert code == 79
    assert "IST0106" in out
    assert "(VirtualService ratings.default -:9)" in out

    code, _, err = run(capsys, "-k=false", str(tmp_path / "missing.yaml"))
    assert code == 1
    assert "missing.yaml: No such file or directory" in err


def test_list_analyzers(capsys):
    code, out, _ = run(capsys, "-L")
    assert code == 0
    names = [line[2:-1] for line in out.splitlines() if line.startswith("* ")]
    assert names == sorted(names)
    assert {
        "annotations.K8sAnalyzer",
        "gateway.IngressGatewayPortAnalyzer",
        "injection.Analyzer",
        "schema.ValidationAnalyzer.VirtualService",
        "virtualservice.DestinationRuleAnalyzer",
    } <= set(names)


def test_the_live_store_with_files_applied_over_it(capsys, tmp_path):
    with StoreThread(tmp_path / "store.db") as store, SyncConfigClient(store.url) as client:
        for path in (BOOKINFO / "platform/local/bookinfo.yaml", BOOKINFO / "networking/destination-rule-all.yaml"):  # fmt: skip
            for resource in loader.load_file(path):
                client.create(resource)
        broken = loader.load_text(
            (BOOKINFO / "networking/virtual-service-reviews-v3.yaml")
            .read_text()
            .replace("subset: v3", "subset: v4")
        )[0]
        client.create(broken)

        code, out, _ = run(capsys, "--config-store", store.url)
        assert code == 79
        assert out == (
            "Error [IST0101] (VirtualService reviews.default) Referenced host+subset in "
            'destinationrule not found: "reviews+v4"\n'
        )  # a stored resource has no file:line
        # The fix, applied over the store in the analysis only: clean, and nothing written.
        fixed = str(BOOKINFO / "networking/virtual-service-reviews-v3.yaml")
        code, out, _ = run(capsys, "--config-store", store.url, fixed)
        assert (code, out) == (0, "")
        assert client.get(broken.schema, "reviews").spec.http[0].route[0].destination.subset == "v4"
        # Files only: the store is not asked.
        code, out, _ = run(capsys, "--config-store", "http://127.0.0.1:1", "-k=false", fixed)
        assert "Referenced host not found" in out  # no services without the store

    code, _, err = run(capsys, "--config-store", store.url)
    assert code == 1
    assert "cannot reach the config store" in err
