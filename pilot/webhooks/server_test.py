"""Pilot's admission webhooks over real TLS, with a certificate from a real CA: the
AdmissionReview round trips the API server makes (allowed, denied with the loader's message,
patched), and bodies that are not reviews."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import pathlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonpatch
import yaml
from cryptography import x509

from manifests import generate
from pilot.bootstrap.server import DiscoveryOptions, DiscoveryServer
from pilot.configstore.testing import StoreThread
from pilot.webhooks.server import WebhookOptions, WebhookServer
from pilot.webhooks.tlscert import CertOptions
from pilot.xds.testing import run_async
from pkg.config import loader
from pkg.config import mesh as meshconfig
from pkg.inject.config import Settings, parse_config, parse_values
from pkg.inject.inject import inject_pod
from security.ca.testing import running_ca

ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod"
ISTIOD_HOST = "istiod.istio-system.svc"  # the name the API server dials (the webhook's service)
TOKEN = "webhook-test-token"
INJECT_DATA = pathlib.Path(__file__).parents[2] / "pkg/inject/testdata"
SAMPLES = pathlib.Path(__file__).parents[2] / "samples/bookinfo/networking"


def _inject_dir(folder: pathlib.Path) -> pathlib.Path:
    """The injector ConfigMap as istiod mounts it: the keys `istioctl install` writes."""
    folder.mkdir()
    values = generate.default_values()
    configmap = generate.injector_configmap(values, values["global"]["istioNamespace"])
    for key in ("config", "values"):
        (folder / key).write_text(configmap["data"][key])
    return folder


@contextlib.asynccontextmanager
async def webhooks(
    tmp_path: pathlib.Path, store_url: str
) -> AsyncIterator[tuple[WebhookServer, ssl.SSLContext]]:
    grants = (("istiod.istio-system", ISTIOD_HOST),)  # as the install starts the CA
    async with running_ca(tmp_path / "ca", grants={TOKEN: [ISTIOD]}, custom_dns_names=grants) as ca:
        root = tmp_path / "root-cert.pem"
        root.write_bytes(ca.bundle.root_pem())
        token = tmp_path / "token"
        token.write_text(TOKEN)
        server = WebhookServer(
            WebhookOptions(
                address="127.0.0.1:0",
                cert=CertOptions(
                    ca_address=ca.address,
                    ca_root=root,
                    token_file=token,
                    dns_names=(ISTIOD_HOST,),
                ),
                config_store=store_url,
                inject_config_dir=_inject_dir(tmp_path / "inject"),
            )
        )
        task = asyncio.create_task(server.run(), name="webhooks")
        try:
            async with asyncio.timeout(20):
                await server.ready.wait()
            # The API server checks the chain against the webhook's caBundle (our CA's root)
            # and the name against the service's host: post() dials by ISTIOD_HOST.
            client = ssl.create_default_context(cafile=str(root))
            yield server, client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def review(
    uid: str, obj: Any, *, kind: str, operation: str = "CREATE", namespace: str = "default"
) -> dict[str, Any]:
    group, _, version = obj.get("apiVersion", "v1").rpartition("/")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
        },
    }


async def post(server: WebhookServer, context: ssl.SSLContext, path: str, body: Any,
               content_type: str = "application/json") -> tuple[int, Any]:  # fmt: skip
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"https://{server.address}{path}",
            data=data,
            headers={"Content-Type": content_type},
            ssl=context,
            server_hostname=ISTIOD_HOST if context.check_hostname else None,
        ) as answer,
    ):
        text = await answer.text()
        try:
            return answer.status, json.loads(text)
        except ValueError:
            return answer.status, text


async def peer_certificate(server: WebhookServer, context: ssl.SSLContext) -> x509.Certificate:
    host, _, port = server.address.rpartition(":")
    _, writer = await asyncio.open_connection(
        host, int(port), ssl=context, server_hostname=ISTIOD_HOST
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    return x509.load_der_x509_certificate(der)


def _sample(name: str) -> dict[str, Any]:
    return next(yaml.safe_load_all((SAMPLES / name).read_text()))


def test_validation_allows_denies_with_the_loaders_message_and_skips_deletes(
    tmp_path: pathlib.Path,
) -> None:
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario() -> None:
            async with webhooks(tmp_path, store.url) as (server, context):
                good = _sample("virtual-service-reviews-80-20.yaml")
                status, body = await post(
                    server, context, "/validate", review("u-1", good, kind="VirtualService")
                )
                assert status == 200
                assert body == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                "response": {"uid": "u-1", "allowed": True}}  # fmt: skip
                peer = await peer_certificate(server, context)
                sans = peer.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [ISTIOD]
                assert sans.get_values_for_type(x509.DNSName) == [ISTIOD_HOST]

                bad = json.loads(json.dumps(good))
                bad["spec"]["http"][0]["route"][0]["destination"]["host"] = "bad_host!"
                try:
                    loader.load_object(bad, namespace="default", source="<admission request>")
                except loader.LoadError as error:
                    message = str(error)
                status, body = await post(
                    server, context, "/validate", review("u-2", bad, kind="VirtualService")
                )
                response = body["response"]
                assert status == 200
                assert response["uid"] == "u-2"
                assert response["allowed"] is False
                assert response["status"]["code"] == 400
                assert response["status"]["message"] == f"configuration is invalid: {message}"
                assert "destination.host: domain name 'bad_host!' invalid" in message

                status, body = await post(
                    server,
                    context,
                    "/validate",
                    review("u-3", bad, kind="VirtualService", operation="DELETE"),
                )
                assert body["response"] == {"uid": "u-3", "allowed": True}

        scenario()


def _pod(labels: dict[str, str] | None = None) -> dict[str, Any]:
    deployment = yaml.safe_load((INJECT_DATA / "deployment.yaml").read_text())
    template = deployment["spec"]["template"]
    metadata = {**template["metadata"], "generateName": "ratings-6d9c-", "namespace": "default"}
    metadata["labels"] = {
        **metadata.get("labels", {}),
        "pod-template-hash": "6d9c",
        **(labels or {}),
    }
    metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ratings-6d9c",
                                    "uid": "4f1c", "controller": True}]  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def test_injection_answers_a_json_patch_that_injects_the_pod(tmp_path: pathlib.Path) -> None:
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario() -> None:
            async with webhooks(tmp_path, store.url) as (server, context):
                # A pod that asks for injection (an unlabelled namespace injects only those).
                pod = _pod({"sidecar.istio.io/inject": "true"})
                status, body = await post(
                    server, context, "/inject", review("p-1", pod, kind="Pod")
                )
                response = body["response"]
                assert status == 200
                assert response["uid"] == "p-1"
                assert response["allowed"] is True
                assert response["patchType"] == "JSONPatch"
                patch = json.loads(base64.b64decode(response["patch"]))
                patched = jsonpatch.apply_patch(pod, patch)
                settings = Settings(
                    config=parse_config((tmp_path / "inject/config").read_text()),
                    values=parse_values((tmp_path / "inject/values").read_text()),
                    mesh=meshconfig.default_mesh_config(),
                )
                assert patched == inject_pod(pod, settings)
                assert [c["name"] for c in patched["spec"]["containers"]] == [
                    "ratings",
                    "istio-proxy",
                ]
                assert [c["name"] for c in patched["spec"]["initContainers"]] == ["istio-init"]
                proxy = patched["spec"]["containers"][1]
                env = {e["name"]: e.get("value") for e in proxy["env"]}
                assert env["ISTIO_META_WORKLOAD_NAME"] == "ratings"
                assert (
                    env["ISTIO_META_OWNER"]
                    == "kubernetes://apis/apps/v1/namespaces/default/deployments/ratings"
                )
                status_annotation = json.loads(
                    patched["metadata"]["annotations"]["sidecar.istio.io/status"]
                )
                assert status_annotation["containers"] == ["istio-proxy"]

                # /inject/cluster/<id>/net/<network> sets the proxy's cluster and network.
                _, body = await post(
                    server,
                    context,
                    "/inject/cluster/east/net/network1",
                    review("p-2", pod, kind="Pod"),
                )
                patched = jsonpatch.apply_patch(
                    pod, json.loads(base64.b64decode(body["response"]["patch"]))
                )
                proxy = next(c for c in patched["spec"]["containers"] if c["name"] == "istio-proxy")
                env = {e["name"]: e.get("value") for e in proxy["env"]}
                assert (env["ISTIO_META_CLUSTER_ID"], env["ISTIO_META_NETWORK"]) == (
                    "east",
                    "network1",
                )
                assert patched["metadata"]["labels"]["topology.istio.io/network"] == "network1"

                # Opted out, or not selected by its namespace: allowed, unpatched.
                for labels in ({"sidecar.istio.io/inject": "false"}, {}):
                    _, body = await post(
                        server, context, "/inject", review("p-3", _pod(labels), kind="Pod")
                    )
                    assert body["response"] == {"uid": "p-3", "allowed": True}

        scenario()


def test_bodies_that_are_not_reviews_get_a_clear_answer(tmp_path: pathlib.Path) -> None:
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario() -> None:
            async with webhooks(tmp_path, store.url) as (server, context):
                status, body = await post(server, context, "/validate", b"{not json")
                assert status == 400
                assert body["response"]["allowed"] is False
                assert body["response"]["status"]["message"].startswith("could not decode body")
                status, body = await post(server, context, "/inject", {"kind": "Pod"})
                assert status == 400
                assert "AdmissionReview" in body["response"]["status"]["message"]
                status, body = await post(
                    server, context, "/inject", b"{}", content_type="text/plain"
                )
                assert status == 415
                bad_pod = _pod({"sidecar.istio.io/inject": "true"})
                bad_pod["metadata"]["annotations"] = {
                    "traffic.sidecar.istio.io/includeOutboundIPRanges": "bad"
                }
                _, body = await post(server, context, "/inject", review("p-4", bad_pod, kind="Pod"))
                response = body["response"]
                assert response["allowed"] is False
                assert response["uid"] == "p-4"
                assert "includeIPRanges invalid" in response["status"]["message"]

        scenario()


def test_pilot_discovery_serves_the_webhooks_beside_xds(tmp_path: pathlib.Path) -> None:
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario() -> None:
            async with running_ca(tmp_path / "ca", grants={TOKEN: [ISTIOD]}) as ca:
                root = tmp_path / "root-cert.pem"
                root.write_bytes(ca.bundle.root_pem())
                (tmp_path / "token").write_text(TOKEN)
                options = DiscoveryOptions(
                    config_store=store.url, grpc_address="127.0.0.1:0", http_address="127.0.0.1:0",
                    webhooks=WebhookOptions(
                        address="127.0.0.1:0",
                        cert=CertOptions(ca_address=ca.address, ca_root=root, token_file=tmp_path / "token"),
                        config_store=store.url, inject_config_dir=_inject_dir(tmp_path / "inject"),
                    ),
                )  # fmt: skip
                server = DiscoveryServer(options)
                task = asyncio.create_task(server.run())
                try:
                    async with asyncio.timeout(20):
                        await server.ready.wait()
                    assert server.webhooks is not None
                    context = ssl.create_default_context(cafile=str(root))
                    context.check_hostname = False
                    good = _sample("virtual-service-reviews-v3.yaml")
                    status, body = await post(
                        server.webhooks,
                        context,
                        "/validate",
                        review("d-1", good, kind="VirtualService"),
                    )
                    assert status == 200
                    assert body["response"] == {"uid": "d-1", "allowed": True}
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

        scenario()


def test_a_ca_that_refuses_dns_names_still_gives_istiods_identity(tmp_path: pathlib.Path) -> None:
    from pilot.webhooks.tlscert import WebhookCertificate

    @run_async
    async def scenario() -> None:
        async with running_ca(tmp_path / "ca", grants={TOKEN: [ISTIOD]}) as ca:
            root = tmp_path / "root-cert.pem"
            root.write_bytes(ca.bundle.root_pem())
            (tmp_path / "token").write_text(TOKEN)
            options = CertOptions(ca_address=ca.address, ca_root=root, token_file=tmp_path / "token",
                                  dns_names=("istiod.istio-system.svc",))  # fmt: skip
            certificate = WebhookCertificate(options)
            try:
                await certificate.obtain()
                leaf = x509.load_pem_x509_certificate(certificate.chain_file.read_bytes())
                sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [ISTIOD]
            finally:
                certificate.close()

    scenario()


def test_settings_and_namespace_labels_from_the_api_server(tmp_path: pathlib.Path) -> None:
    """No files: the injector ConfigMaps and the namespace's labels come from the API server
    (here a double of it that speaks the documented HTTP API), re-read when they change."""
    from istioctl.install.testing import ApiServerDouble

    configmaps = {o["metadata"]["name"]: o for o in generate.generate() if o["kind"] == "ConfigMap"}
    with ApiServerDouble() as api:
        api.apply("v1", "namespaces", "", "bookinfo", {"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": "bookinfo", "labels": {"istio-injection": "enabled"}}})  # fmt: skip

        @run_async
        async def scenario() -> None:
            async with running_ca(tmp_path / "ca", grants={TOKEN: [ISTIOD]}) as ca:
                root = tmp_path / "root-cert.pem"
                root.write_bytes(ca.bundle.root_pem())
                (tmp_path / "token").write_text(TOKEN)
                server = WebhookServer(WebhookOptions(
                    address="127.0.0.1:0", config_store=api.url,
                    cert=CertOptions(ca_address=ca.address, ca_root=root, token_file=tmp_path / "token")))  # fmt: skip
                task = asyncio.create_task(server.run())
                try:
                    async with asyncio.timeout(20):
                        await server.ready.wait()
                    context = ssl.create_default_context(cafile=str(root))
                    context.check_hostname = False
                    pod = _pod()
                    pod["metadata"]["namespace"] = "bookinfo"
                    # No ConfigMap yet: a denial that says so (and /ready says it too).
                    _, body = await post(
                        server,
                        context,
                        "/inject",
                        review("s-1", pod, kind="Pod", namespace="bookinfo"),
                    )
                    assert body["response"]["allowed"] is False
                    assert (
                        "istio-system/istio-sidecar-injector not found"
                        in body["response"]["status"]["message"]
                    )
                    for name, configmap in configmaps.items():
                        api.apply("v1", "configmaps", "istio-system", name, configmap)
                    await asyncio.sleep(1.1)  # the store is re-read at most once a second
                    # The namespace is labelled istio-injection=enabled: a pod that says nothing is injected.
                    _, body = await post(
                        server,
                        context,
                        "/inject",
                        review("s-2", pod, kind="Pod", namespace="bookinfo"),
                    )
                    patched = jsonpatch.apply_patch(
                        pod, json.loads(base64.b64decode(body["response"]["patch"]))
                    )
                    proxy = next(
                        c for c in patched["spec"]["containers"] if c["name"] == "istio-proxy"
                    )
                    assert proxy["image"] == "docker.io/istiopy/proxyv2:0.1.0"
                    assert "--namespace=$(POD_NAMESPACE)" in proxy["args"]
                    # The same pod in an unlabelled namespace is left alone.
                    _, body = await post(
                        server, context, "/inject", review("s-3", _pod(), kind="Pod")
                    )
                    assert body["response"] == {"uid": "s-3", "allowed": True}

                    # A burst of pods asks the API server for the namespace once; a
                    # relabelling applies once the cached labels are a second old.
                    def asked() -> int:
                        return sum(r.method == "GET" and r.path == "/api/v1/namespaces/bookinfo"
                                   for r in api.requests)  # fmt: skip

                    before = asked()
                    for uid in ("b-1", "b-2", "b-3", "b-4", "b-5"):
                        _, body = await post(server, context, "/inject",
                                             review(uid, pod, kind="Pod", namespace="bookinfo"))  # fmt: skip
                        assert body["response"]["patchType"] == "JSONPatch"
                    assert asked() - before <= 1
                    api.apply("v1", "namespaces", "", "bookinfo", {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "bookinfo", "labels": {"istio-injection": "disabled"}}})  # fmt: skip
                    await asyncio.sleep(1.1)
                    _, body = await post(server, context, "/inject",
                                         review("s-4", pod, kind="Pod", namespace="bookinfo"))  # fmt: skip
                    assert body["response"] == {"uid": "s-4", "allowed": True}
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

        scenario()
