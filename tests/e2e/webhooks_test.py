"""Pilot's admission webhooks as a cluster meets them: pilot-discovery, the CA and the config
store as processes on loopback, the injector settings from the generated install (the
ConfigMaps mounted as files, as istiod mounts them), and AdmissionReviews over TLS checked
against the CA's root and dialled by the service's DNS name, as the API server dials them: a
pod patched with the sidecar, a valid config allowed, a bad one denied with the loader's
message."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import json
import os
import pathlib
import socket
import ssl
import subprocess
import sys
import time
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
OBJECTS = generate.generate()


def _args(kind: str, name: str) -> list[str]:
    workload = next(o for o in OBJECTS if o["kind"] == kind and o["metadata"]["name"] == name)
    return workload["spec"]["template"]["spec"]["containers"][0]["args"]


def _flag(args: list[str], flag: str) -> str:
    return next(a.partition("=")[2] for a in args if a.startswith(f"{flag}="))


@dataclasses.dataclass(frozen=True)
class Webhooks:
    """Pilot's webhook port, dialled as the API server dials the webhook's service."""

    address: tuple[str, int]
    host: str  # <service>.<namespace>.svc, from the webhook configuration
    context: ssl.SSLContext

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        connection = _NamedHost(self.address, self.host, self.context)
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read())
        finally:
            connection.close()


class _NamedHost(http.client.HTTPSConnection):
    """Connects to an address, checking the certificate against a DNS name (no resolver)."""

    def __init__(self, address: tuple[str, int], host: str, context: ssl.SSLContext) -> None:
        super().__init__(host, address[1], context=context, timeout=10)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection(self._address, timeout=self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _wait(
    url: str, process: subprocess.Popen[bytes], log: pathlib.Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            program = str(process.args[2])  # type: ignore[index]  # Popen.args: the argv list given
            raise RuntimeError(f"{program} exited {process.returncode}:\n{log.read_text()[-3000:]}")
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
def pilot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    run = tmp_path_factory.mktemp("webhooks")
    tokens = run / "tokens.yaml"
    tokens.write_text(yaml.safe_dump([{"token": "pilot-token", "identities": [ISTIOD]}]))
    (run / "pilot-token").write_text("pilot-token\n")
    # The install's ConfigMaps, as files: what istiod's Deployment mounts.
    configmaps = {o["metadata"]["name"]: o["data"] for o in OBJECTS if o["kind"] == "ConfigMap"}
    # The names the install gives the CA and Pilot, and the service the API server dials.
    dns_grants = _flag(_args("Deployment", "istio-ca"), "--custom-dns-names")
    dns_name = _flag(_args("Deployment", "istiod"), "--webhook-dns-name")
    webhook = next(o for o in OBJECTS if o["kind"] == "MutatingWebhookConfiguration")
    service = webhook["webhooks"][0]["clientConfig"]["service"]
    inject = run / "inject"
    inject.mkdir()
    for key, value in configmaps["istio-sidecar-injector"].items():
        (inject / key).write_text(value)
    (run / "mesh").write_text(configmaps["istio"]["mesh"])
    store = StoreProcess(run / "store.db").start()
    try:
        with _process(["security.ca.main", "--ca-dir", str(run / "ca"), "--tokens", str(tokens),
                       "--address", f"{CA}:8060", "--mtls-address", f"{CA}:8062", "--health-address", f"{CA}:8061",
                       "--custom-dns-names", dns_grants],
                      run / "ca.log") as ca:  # fmt: skip
            _wait(f"http://{CA}:8061/ready", ca, run / "ca.log")
            with _process(["pilot.cmd.discovery", "--config-store", store.url,
                           "--grpc-address", f"{PILOT}:15010", "--http-address", f"{PILOT}:15014",
                           "--webhook-address", f"{PILOT}:15017", "--ca-address", f"{CA}:8060",
                           "--ca-root", str(run / "ca/root-cert.pem"), "--token-file", str(run / "pilot-token"),
                           "--inject-config-dir", str(inject), "--mesh-config", str(run / "mesh"),
                           "--webhook-dns-name", dns_name],
                          run / "pilot.log") as discovery:  # fmt: skip
                _wait(f"http://{PILOT}:15014/ready", discovery, run / "pilot.log")
                context = ssl.create_default_context(cafile=str(run / "ca/root-cert.pem"))
                host = f"{service['name']}.{service['namespace']}.svc"
                yield Webhooks((PILOT, 15017), host, context)
    finally:
        store.kill()


def _review(
    webhooks: Webhooks, path: str, uid: str, obj: dict[str, Any], kind: str
) -> dict[str, Any]:
    group, _, version = obj["apiVersion"].rpartition("/")
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": group, "version": version, "kind": kind}, "namespace": "default",
        "operation": "CREATE", "object": obj}}  # fmt: skip
    status, review = webhooks.post(path, json.dumps(body).encode())
    assert status == 200
    assert review["apiVersion"] == "admission.k8s.io/v1"
    assert review["kind"] == "AdmissionReview"
    assert review["response"]["uid"] == uid
    return review["response"]


def test_a_pod_is_patched_with_the_sidecar(pilot: Webhooks) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": "ratings-v1-7d9f-", "namespace": "default",
                        "labels": {"app": "ratings", "version": "v1", "sidecar.istio.io/inject": "true",
                                   "pod-template-hash": "7d9f"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ratings-v1-7d9f",
                                             "uid": "1", "controller": True}]},
           "spec": {"serviceAccountName": "bookinfo-ratings",
                    "containers": [{"name": "ratings", "image": "docker.io/istio/examples-bookinfo-ratings-v1:1.20.3",
                                    "ports": [{"containerPort": 9080, "name": "http"}]}]}}  # fmt: skip
    response = _review(pilot, "/inject", "pod-1", pod, "Pod")
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    containers = {c["name"]: c for c in patched["spec"]["containers"]}
    assert list(containers) == ["ratings", "istio-proxy"]
    assert [c["name"] for c in patched["spec"]["initContainers"]] == ["istio-init"]
    proxy = containers["istio-proxy"]
    assert (
        "--labels=app=ratings,pod-template-hash=7d9f,security.istio.io/tlsMode=istio,"
        "service.istio.io/canonical-name=ratings,service.istio.io/canonical-revision=v1,"
        "sidecar.istio.io/inject=true,version=v1"
    ) in proxy["args"]
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert (
        env["ISTIO_META_OWNER"]
        == "kubernetes://apis/apps/v1/namespaces/default/deployments/ratings-v1"
    )
    assert json.loads(patched["metadata"]["annotations"]["sidecar.istio.io/status"])[
        "containers"
    ] == ["istio-proxy"]


def test_validation_allows_and_denies_with_the_loaders_message(pilot: Webhooks) -> None:
    service = next(
        yaml.safe_load_all(
            (
                ROOT / "samples/bookinfo/networking/virtual-service-ratings-test-delay.yaml"
            ).read_text()
        )
    )
    assert _review(pilot, "/validate", "vs-1", service, "VirtualService") == {
        "uid": "vs-1",
        "allowed": True,
    }
    service["spec"]["http"][0]["fault"]["delay"]["fixedDelay"] = "seven seconds"
    response = _review(pilot, "/validate", "vs-2", service, "VirtualService")
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert response["status"]["message"].startswith(
        "configuration is invalid: <admission request>: document 1 (VirtualService default/ratings): spec.http[0].fault.delay.fixedDelay"
    )


def test_a_body_that_is_not_a_review_is_refused_not_a_500(pilot: Webhooks) -> None:
    status, body = pilot.post("/inject", b"[]")
    assert status == 400
    assert body["response"]["allowed"] is False


def test_the_certificate_is_for_the_service_not_any_name(pilot: Webhooks) -> None:
    wrong = dataclasses.replace(pilot, host="istiod.elsewhere.svc")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        wrong.post("/validate", b"{}")
