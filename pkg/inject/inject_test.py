"""kube-inject against Istio's own golden files: its injection template, its default values
and its test inputs (testdata/istio/, from istio/istio's pkg/kube/inject/testdata/inject
and manifests/charts/istio-control/istio-discovery), compared by structure: containers,
args, ports, env, volumes, annotations and labels, everything but what a Go struct round
trip spells differently (pkg/inject/testing.py)."""

from __future__ import annotations

import copy
import json
import pathlib
import textwrap
from typing import Any

import pytest

from pkg.config import mesh as meshconfig
from pkg.inject import kubeinject
from pkg.inject import testing as compare
from pkg.inject.config import Settings, parse_config, parse_values

TESTDATA = pathlib.Path(__file__).with_name("testdata") / "istio"

# Inputs injected with Istio's defaults: native sidecars (istio-proxy an init container, as
# on Kubernetes 1.33+), and the "-old-version" goldens with istio-proxy a container.
DEFAULT = [
    "auth.non-default-service-account", "auth", "cronjob", "daemonset", "enable-core-dump",
    "explicit-security-context", "frontend", "hello-host-network", "hello-host-network-with-ns",
    "hello-ignore", "hello-image-pull-secret", "hello-mtls-not-ready", "hello-multi",
    "hello-namespace", "hello-probes", "hello-probes-noProxyHoldApplication-ProxyConfig",
    "hello-probes-proxyHoldApplication-ProxyConfig", "hello-probes-with-flag-set-in-annotation",
    "hello-probes-with-flag-unset-in-annotation", "hello-readiness", "hello-service",
    "hello-tracing-disabled", "hello", "https-probes", "init-no-intercept-no-native-sidecar",
    "job", "kubevirtInterfaces_list", "list-frontend", "list", "multi-container", "multi-init",
    "named_port", "native-sidecar-opt-in", "native-sidecar-opt-out", "native-sidecar",
    "one_container", "only-proxy-container", "pod", "prometheus-scrape", "prometheus-scrape2",
    "proxy-override-args", "proxy-override-runas", "proxy-override", "ready_live", "ready_only",
    "replicaset", "replicationcontroller", "reroute-virtual-interfaces_list",
    "resource_annotations", "startup_live", "startup_only", "startup_ready_live", "statefulset",
    "status_annotations", "status_annotations_zeroport", "tcp-probes",
    "traffic-annotations-empty-includes", "traffic-annotations-wildcards",
    "traffic-params-empty-includes", "truncate-canonical-name-custom-controller-pod",
    "truncate-canonical-name-pod", "two_container", "user-volume",
]  # fmt: skip
OLD_VERSION = [
    "cronjob",
    "daemonset",
    "hello",
    "job",
    "native-sidecar",
    "pod",
    "replicaset",
    "statefulset",
]
_STATUS = {"global.proxy.statusPort": 123, "global.proxy.readinessInitialDelaySeconds": 100,
           "global.proxy.readinessPeriodSeconds": 200, "global.proxy.readinessFailureThreshold": 300}  # fmt: skip
# Istio's cases with settings of their own (its --set flags, as values; its mesh changes).
CUSTOM: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("hello", "hello.yaml.proxyImageName.injected", {"global.proxy.image": "proxyTest"}, {}),
    ("hello", "hello.yaml.proxyInitImageName.injected", {"global.proxy_init.image": "proxyInitTest"}, {}),
    ("hello", "hello-always.yaml.injected", {"global.imagePullPolicy": "Always"}, {}),
    ("hello", "hello-never.yaml.injected", {"global.imagePullPolicy": "Never"}, {}),
    ("hello", "hello-mount-mtls-certs.yaml.injected", {"global.mountMtlsCerts": True}, {}),
    ("hello", "hello.proxyHoldsApplication.yaml.injected", {"global.proxy.holdApplicationUntilProxyStarts": True}, {}),
    ("hello-probes", "hello-probes.proxyHoldsApplication.yaml.injected", {"global.proxy.holdApplicationUntilProxyStarts": True}, {}),
    ("merge-probers", "merge-probers.yaml.injected", {"global.proxy.holdApplicationUntilProxyStarts": True}, {}),
    ("hello", "hello.yaml.cni.injected", {"pilot.cni.enabled": True, "pilot.cni.provider": "default", "global.network": "network1"}, {}),
    ("proxy-override-runas", "proxy-override-runas.yaml.cni.injected", {"pilot.cni.enabled": True}, {}),
    ("traffic-params", "traffic-params.yaml.injected", {
        "global.proxy.includeIPRanges": "127.0.0.1/24,10.96.0.1/24",
        "global.proxy.excludeIPRanges": "10.96.0.2/24,10.96.0.3/24",
        "global.proxy.excludeInboundPorts": "4,5,6", "global.proxy.statusPort": 0}, {}),
    ("status_params", "status_params.yaml.injected", _STATUS, {}),
    ("kubevirtInterfaces", "kubevirtInterfaces.yaml.injected", _STATUS, {}),
    ("reroute-virtual-interfaces", "reroute-virtual-interfaces.yaml.injected", _STATUS, {}),
    ("hello", "hello-tproxy.yaml.injected", {}, {"defaultConfig": {"interceptionMode": "TPROXY"}}),
    ("proxy-override-runas", "proxy-override-runas.yaml.tproxy.injected", {}, {"defaultConfig": {"interceptionMode": "TPROXY"}}),
    ("format-duration", "format-duration.yaml.injected", {}, {"defaultConfig": {"drainDuration": "23s"}}),
    ("hello-probes-localhost", "hello-probes-localhost.yaml.injected", {}, {"inboundTrafficPolicy": {"mode": "LOCALHOST"}}),
    ("traffic-annotations", "traffic-annotations.yaml.injected", {},
     {"defaultConfig": {"proxyMetadata": {"ISTIO_META_TLS_CLIENT_KEY": "/etc/identity/client/keys/client-key.pem"}}}),
]  # fmt: skip
BAD = [
    "includeipranges",
    "excludeipranges",
    "includeinboundports",
    "excludeinboundports",
    "excludeoutboundports",
]


def istio_config() -> Any:
    template = (TESTDATA / "injection-template.yaml").read_text()
    return parse_config(
        "policy: enabled\ntemplates:\n  sidecar: |\n" + textwrap.indent(template, "    ")
    )


CONFIG = istio_config()
VALUES = parse_values((TESTDATA / "values.json").read_text())


def settings(
    values: dict[str, Any] | None = None, mesh: dict[str, Any] | None = None, *, native: bool
) -> Settings:
    merged = copy.deepcopy(VALUES)
    for dotted, value in (values or {}).items():
        *parents, leaf = dotted.split(".")
        node = merged
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    mesh_config = meshconfig.apply_mesh_config(json.dumps(mesh or {}))
    return Settings(config=CONFIG, values=merged, mesh=mesh_config, native_sidecar=native)


def check(source: str, golden: str, options: Settings) -> None:
    warnings: list[str] = []
    got = kubeinject.into_resource_text((TESTDATA / source).read_text(), options, warnings.append)
    problems = compare.diff_streams(got, (TESTDATA / golden).read_text())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", DEFAULT)
def test_default_settings_match_istio(name: str) -> None:
    check(f"{name}.yaml", f"{name}.yaml.injected", settings(native=True))


@pytest.mark.parametrize("name", OLD_VERSION)
def test_proxy_as_a_container_matches_istio(name: str) -> None:
    check(f"{name}.yaml", f"{name}-old-version.yaml.injected", settings(native=False))


@pytest.mark.parametrize(("source", "golden", "values", "mesh"), CUSTOM, ids=[c[1] for c in CUSTOM])
def test_custom_settings_match_istio(
    source: str, golden: str, values: dict[str, Any], mesh: dict[str, Any]
) -> None:
    check(f"{source}.yaml", golden, settings(values, mesh, native=True))


@pytest.mark.parametrize(
    "name", ["hello", "hello-probes", "prometheus-scrape", "multi-init", "list"]
)
@pytest.mark.parametrize("native", [True, False])
def test_injecting_twice_changes_nothing(name: str, native: bool) -> None:
    # The status annotation says what was added; a second injection replaces just that.
    options = settings(native=native)
    once = kubeinject.into_resource_text((TESTDATA / f"{name}.yaml").read_text(), options)
    twice = kubeinject.into_resource_text(once, options)
    assert not compare.diff_streams(twice, once)


@pytest.mark.parametrize("name", BAD)
def test_bad_traffic_annotations_are_refused(name: str) -> None:
    path = next(TESTDATA.glob(f"traffic-annotations-bad-{name}.yaml"))
    with pytest.raises(kubeinject.KubeInjectError) as error:
        kubeinject.into_resource_text(path.read_text(), settings(native=True))
    assert name in str(error.value).lower()
    assert "traffic.sidecar.istio.io/" in str(error.value)


def test_host_network_and_disabled_pods_are_left_alone_with_a_warning() -> None:
    warnings: list[str] = []
    text = (TESTDATA / "hello-host-network.yaml").read_text()
    out = kubeinject.into_resource_text(text, settings(native=True), warnings.append)
    assert not compare.diff_streams(out, text)
    assert warnings == [
        '===> Skipping injection because Deployment "hello-host-network" has host networking enabled'
    ]
