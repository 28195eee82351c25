"""The install the local platform applies: the topology's MeshConfig in the `istio` ConfigMap,
and injection from the `istio-sidecar-injector` one rendering istio-init only with capture."""

from __future__ import annotations

from typing import Any

import yaml

from pkg.inject import config as injectconfig
from pkg.inject.inject import Workload, inject_pod
from tools.local import install

MESH = (
    "mixerCheckServer: 10.244.0.1:9091\n"
    "enableTracing: true\n"
    "defaultConfig:\n"
    "  tracing: {sampling: 100.0, zipkin: {address: '10.244.0.1:9411'}}\n"
)
POD: dict[str, Any] = {
    "metadata": {"namespace": "default", "labels": {"app": "reviews", "version": "v1"}},
    "spec": {
        "serviceAccountName": "bookinfo-reviews",
        "containers": [
            {"name": "reviews", "image": "docker.io/istio/examples-bookinfo-reviews-v1"}
        ],
    },
}


def _injected(mode: str) -> dict[str, object]:
    namespace, mesh, injector = install.configmaps(MESH, mode)
    assert namespace == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "istio-system"},
    }
    settings = injectconfig.from_configmaps(injector, mesh)
    return inject_pod(
        POD, settings, workload=Workload("reviews-v1", "default", "apps/v1", "Deployment")
    )


def test_the_mesh_configmap_keeps_the_topologys_config() -> None:
    objects = install.configmaps(MESH, "NONE")
    mesh = yaml.safe_load(install.mesh_text(objects))
    assert mesh["mixerCheckServer"] == "10.244.0.1:9091"
    assert mesh["enableTracing"] is True
    assert mesh["defaultConfig"]["tracing"]["zipkin"] == {"address": "10.244.0.1:9411"}
    assert mesh["defaultConfig"]["interceptionMode"] == "NONE"
    assert mesh["trustDomain"] == "cluster.local"  # the install's defaults stay under it


def _env(pod: dict[str, object], name: str) -> str:
    [proxy] = [c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy"]  # type: ignore[index]
    return next(e["value"] for e in proxy["env"] if e["name"] == name)


def test_no_capture_no_istio_init() -> None:
    pod = _injected("NONE")
    assert "initContainers" not in pod["spec"]  # type: ignore[operator]
    assert _env(pod, "ISTIO_META_INTERCEPTION_MODE") == "NONE"


def test_capture_gives_istio_init_with_istios_arguments() -> None:
    pod = _injected("REDIRECT")
    [init] = pod["spec"]["initContainers"]  # type: ignore[index]
    assert init["name"] == "istio-init"
    assert init["args"][:9] == [
        "istio-iptables",
        "-p",
        "15001",
        "-z",
        "15006",
        "-u",
        "1337",
        "-m",
        "REDIRECT",
    ]
    assert init["securityContext"]["runAsUser"] == 0
    assert _env(pod, "ISTIO_META_INTERCEPTION_MODE") == "REDIRECT"


def test_the_traffic_annotations_reach_istio_init() -> None:
    annotated = {
        **POD,
        "metadata": {
            **POD["metadata"],
            "annotations": {
                "traffic.sidecar.istio.io/excludeOutboundPorts": "3306",
                "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.96.0.1/32",
            },
        },
    }
    _, mesh, injector = install.configmaps(MESH, "REDIRECT")
    settings = injectconfig.from_configmaps(injector, mesh)
    pod = inject_pod(
        annotated, settings, workload=Workload("r", "default", "apps/v1", "Deployment")
    )
    [init] = pod["spec"]["initContainers"]
    args = init["args"]
    assert args[args.index("-o") + 1] == "3306"
    assert args[args.index("-x") + 1] == "10.96.0.1/32"
