"""istio-ca-root-cert published to every namespace through the API server's HTTP API (a double
that validates what it is sent): new namespaces, a rotated root, Kubernetes' own namespaces
left out, a namespace that refuses not stopping the rest."""

from __future__ import annotations

import pathlib

from istioctl.install.testing import ApiServerDouble
from pilot.bootstrap.rootcert import CONFIGMAP, RootCertOptions, RootCertPublisher
from pilot.xds.testing import run_async
from pkg.kube.client import ConfigClient


def _namespace(api: ApiServerDouble, name: str) -> None:
    api.apply("v1", "namespaces", "", name,
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})  # fmt: skip


def test_every_namespace_gets_the_root_and_keeps_it_current(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root-cert.pem"
    root.write_text("-----BEGIN CERTIFICATE-----\nfirst\n-----END CERTIFICATE-----\n")
    with ApiServerDouble() as api:
        for name in ("default", "bookinfo", "kube-system", "kube-public"):
            _namespace(api, name)

        @run_async
        async def scenario() -> None:
            async with ConfigClient(api.url) as client:
                publisher = RootCertPublisher(client, RootCertOptions(root_file=root))
                assert sorted(await publisher.publish()) == ["bookinfo", "default"]
                stored = api.find("ConfigMap", CONFIGMAP, "bookinfo")
                assert stored is not None
                assert stored["data"]["root-cert.pem"] == root.read_text()
                assert stored["metadata"]["labels"] == {"istio.io/config": "true"}
                assert api.find("ConfigMap", CONFIGMAP, "kube-system") is None
                assert api.requests[-1].field_manager == "istiod"
                # Nothing changed: nothing written. A new namespace: only it.
                assert await publisher.publish() == []
                _namespace(api, "shop")
                assert await publisher.publish() == ["shop"]
                # A rotated root reaches every namespace; one edited by hand is put back.
                root.write_text("-----BEGIN CERTIFICATE-----\nsecond\n-----END CERTIFICATE-----\n")
                assert sorted(await publisher.publish()) == ["bookinfo", "default", "shop"]
                edited = api.find("ConfigMap", CONFIGMAP, "shop")
                assert edited is not None
                edited["data"]["root-cert.pem"] = "tampered"
                api.apply("v1", "configmaps", "shop", CONFIGMAP, edited)
                assert await publisher.publish() == ["shop"]

        scenario()


def test_a_namespace_that_refuses_does_not_stop_the_others(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root-cert.pem"
    root.write_text("root\n")
    with ApiServerDouble() as api:
        for name in ("a", "b"):
            _namespace(api, name)
        # The API server refuses the write in namespace "b" (422, as for a quota or policy).
        real_apply = api.apply

        def refusing(gv, plural, namespace, name, body):
            if plural == "configmaps" and namespace == "b":
                return 422, {"kind": "Status", "code": 422, "reason": "Invalid", "message": "no"}
            return real_apply(gv, plural, namespace, name, body)

        api.apply = refusing  # type: ignore[method-assign]

        @run_async
        async def scenario() -> None:
            async with ConfigClient(api.url) as client:
                publisher = RootCertPublisher(client, RootCertOptions(root_file=root))
                assert await publisher.publish() == ["a"]
                api.apply = real_apply  # type: ignore[method-assign]
                assert await publisher.publish() == ["b"]

        scenario()
