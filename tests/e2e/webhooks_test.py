"""Pilot's admission webhooks as a cluster meets them: pilot-discovery, the CA and the config
store as processes on loopback, the injector settings from the generated install (the
ConfigMaps mounted as files, as istiod mounts them), and AdmissionReviews over TLS checked
against the CA's root: a pod patched with the sidecar, a valid config allowed, a bad one
denied with the loader's message."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import jsonpatch
import pytest
import yaml

from manifests import generate
from pilot.configstore.testing import StoreProcess
from tests.e2e.meshtest import loopback_subnet

ROOT = pathlib.Path(__file__).absolute().parents[2]
SUBNET = loopback_subnet(13)
CA, PILOT = f"{SUBNET}.1", f"{SUBNET}.2"
ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod"


def _wait(
    url: str, process: subprocess.Popen[bytes], log: pathlib.Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args[2]} exited {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready in {timeout}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _process(args: list[str], log: pathlib.Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ssl.SSLContext]]:
    run = tmp_path_factory.mktemp("webhooks")
    tokens = run / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([{"token": "pilot-token", "identities": [ISTIOD]}]))
    (run / "pilot-token").write_text("pilot-token\n")
    # The install's ConfigMaps, as files: what istiod's Deployment mounts.
    objects = generate.generate()
    configmaps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    inject = run / "inject"
    inject.mkdir()
    for key, value in configmaps["istio-sidecar-injector"].items():
        (inject / key).write_text(value)
    (run / "mesh").write_text(configmaps["istio"]["mesh"])
    store = StoreProcess(run / "store.db").start()
    try:
        with _process(["security.ca.main", "--ca-dir", str(run / "ca"), "--tokens", str(tokens),
                       "--address", f"{CA}:8060", "--mtls-address", f"{CA}:8062", "--health-address", f"{CA}:8061"],
                      run / "ca.log") as ca:  # fmt: skip
            _wait(f"http://{CA}:8061/ready", ca, run / "ca.log")
            with _process(["pilot.cmd.discovery", "--config-store", store.url,
                           "--grpc-address", f"{PILOT}:15010", "--http-address", f"{PILOT}:15014",
                           "--webhook-address", f"{PILOT}:15017", "--ca-address", f"{CA}:8060",
                           "--ca-root", str(run / "ca/root-cert.pem"), "--token-file", str(run / "pilot-token"),
                           "--inject-config-dir", str(inject), "--mesh-config", str(run / "mesh")],
                          run / "pilot.log") as discovery:  # fmt: skip
                _wait(f"http://{PILOT}:15014/ready", discovery, run / "pilot.log")
                context = ssl.create_default_context(cafile=str(run / "ca/root-cert.pem"))
                context.check_hostname = False  # istiod's certificate names it by SPIFFE id
                yield f"https://{PILOT}:15017", context
    finally:
        store.kill()


def _review(
    base: str, context: ssl.SSLContext, path: str, uid: str, obj: dict[str, Any], kind: str
) -> dict[str, Any]:
    group, _, version = obj["apiVersion"].rpartition("/")
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": group, "version": version, "kind": kind}, "namespace": "default",
        "operation": "CREATE", "object": obj}}  # fmt: skip
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        review = json.load(answer)
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    assert review["response"]["uid"] == uid
    return review["response"]


def test_a_pod_is_patched_with_the_sidecar(pilot: tuple[str, ssl.SSLContext]) -> None:
    base, context = pilot
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": "ratings-v1-7d9f-", "namespace": "default",
                        "labels": {"app": "ratings", "version": "v1", "sidecar.istio.io/inject": "true",
                                   "pod-template-hash": "7d9f"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ratings-v1-7d9f",
                                             "uid": "1", "controller": True}]},
           "spec": {"serviceAccountName": "bookinfo-ratings",
                    "containers": [{"name": "ratings", "image": "docker.io/istio/examples-bookinfo-ratings-v1:1.20.3",
                                    "ports": [{"containerPort": 9080, "name": "http"}]}]}}  # fmt: skip
    response = _review(base, context, "/inject", "pod-1", pod, "Pod")
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    containers = {c["name"]: c for c in patched["spec"]["containers"]}
    assert list(containers) == ["ratings", "istio-proxy"]
    assert [c["name"] for c in patched["spec"]["initContainers"]] == ["istio-init"]
    proxy = containers["istio-proxy"]
    assert (
        "--labels=app=ratings,pod-template-hash=7d9f,sidecar.istio.io/inject=true,version=v1"
        in proxy["args"]
    )
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert (
        env["ISTIO_META_OWNER"]
        == "kubernetes://apis/apps/v1/namespaces/default/deployments/ratings-v1"
    )
    assert json.loads(patched["metadata"]["annotations"]["sidecar.istio.io/status"])[
        "containers"
    ] == ["istio-proxy"]


def test_validation_allows_and_denies_with_the_loaders_message(
    pilot: tuple[str, ssl.SSLContext],
) -> None:
    base, context = pilot
    service = next(
        yaml.safe_load_all(
            (
                ROOT / "samples/bookinfo/networking/virtual-service-ratings-test-delay.yaml"
            ).read_text()
        )
    )
    assert _review(base, context, "/validate", "vs-1", service, "VirtualService") == {
        "uid": "vs-1",
        "allowed": True,
    }
    service["spec"]["http"][0]["fault"]["delay"]["fixedDelay"] = "seven seconds"
    response = _review(base, context, "/validate", "vs-2", service, "VirtualService")
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert response["status"]["message"].startswith(
        "configuration is invalid: <admission request>: document 1 (VirtualService default/ratings): spec.http[0].fault.delay.fixedDelay"
    )


def test_a_body_that_is_not_a_review_is_refused_not_a_500(
    pilot: tuple[str, ssl.SSLContext],
) -> None:
    base, context = pilot
    request = urllib.request.Request(base + "/inject", b"[]", {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, context=context, timeout=10)
    assert error.value.code == 400
    assert json.load(error.value)["response"]["allowed"] is False
