"""kube-inject with the project's own injector ConfigMap (manifests/: the template under
charts/istio-control/istio-discovery/files, the values of values.yaml, the mesh of its
meshConfig) over the inputs in testdata/, checked by what the result must hold: which
containers were added and where, the arguments istio-init and the agent get, the probes the
agent stands in for, the status annotation, volumes and labels. What only Istio's template
does (CNI's istio-validation, core dumps, several templates) is checked with small templates
of our own. Agreement with Istio's own goldens is measured out of tree:
tools/conformance/inject.py."""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from manifests import generate
from pkg.inject import kubeinject
from pkg.inject.config import Settings, from_configmaps, parse_config

TESTDATA = pathlib.Path(__file__).with_name("testdata")
VALUES = generate.default_values()
HUB, TAG = VALUES["global"]["hub"], VALUES["global"]["tag"]
PROXY_IMAGE = f"{HUB}/proxyv2:{TAG}"
STATUS_PORT = "15020"  # meshConfig.defaultConfig's default, where the agent answers probes
INSTALL_VOLUMES = [
    "istio-envoy",
    "istio-data",
    "istio-podinfo",
    "istio-token",
    "istiod-ca-cert",
    "istio-sds",
]


@functools.cache
def install_settings(*sets: str, native: bool = False) -> Settings:
    """What `istioctl install --set ...` would put in the two ConfigMaps, as Settings."""
    values = generate.default_values()
    for flag in sets:
        values = generate.apply_set(values, flag)
    namespace = values["global"]["istioNamespace"]
    return from_configmaps(
        generate.injector_configmap(values, namespace),
        generate.mesh_configmap(values, namespace),
        native_sidecar=native,
    )


def inject_text(
    text: str, settings: Settings | None = None, warn: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    out = kubeinject.into_resource_text(text, settings or install_settings(), warn)
    return [d for d in yaml.safe_load_all(out) if d is not None]


def inject(name: str, settings: Settings | None = None) -> list[dict[str, Any]]:
    return inject_text((TESTDATA / name).read_text(), settings)


def with_annotations(name: str, annotations: dict[str, str]) -> str:
    """A one-document input with annotations added to its pod template."""
    document = yaml.safe_load((TESTDATA / name).read_text())
    metadata = pod_of(document)["metadata"]
    metadata["annotations"] = {**metadata.get("annotations", {}), **annotations}
    return yaml.safe_dump(document)


def pod_of(document: dict[str, Any]) -> dict[str, Any]:
    """The pod (metadata and spec) a document holds, as kube-inject reads it."""
    kind = document["kind"]
    if kind == "Pod":
        return document
    if kind == "CronJob":
        job = document["spec"]["jobTemplate"]
        return {"metadata": job.setdefault("metadata", {}), "spec": job["spec"]["template"]["spec"]}
    return document["spec"]["template"]


def names(items: list[dict[str, Any]] | None) -> list[str]:
    return [item["name"] for item in items or []]


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod["spec"]
    found = [
        c for c in spec.get("containers", []) + spec.get("initContainers", []) if c["name"] == name
    ]
    assert len(found) == 1, (
        f"{name} in {names(spec.get('containers'))} + {names(spec.get('initContainers'))}"
    )
    return found[0]


def env(item: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in item.get("env", [])}


def iptables(pod: dict[str, Any]) -> dict[str, str]:
    """istio-init's flags (`-p 15001 ...`) by name."""
    args = container(pod, "istio-init")["args"]
    assert args[0] == "istio-iptables"
    flags = args[1:]
    return dict(zip(flags[::2], flags[1::2], strict=True))


def agent_flags(pod: dict[str, Any]) -> dict[str, str]:
    """The agent's `--name=value` arguments by name."""
    args = container(pod, "istio-proxy")["args"]
    return dict(a.removeprefix("--").partition("=")[::2] for a in args if a.startswith("--"))


def status(pod: dict[str, Any]) -> dict[str, Any]:
    return json.loads(pod["metadata"]["annotations"]["sidecar.istio.io/status"])


# --- the default install --------------------------------------------------------------


def test_a_deployment_gets_istio_init_and_the_proxy_after_the_app() -> None:
    source = yaml.safe_load((TESTDATA / "deployment.yaml").read_text())
    [document] = inject("deployment.yaml")
    pod = pod_of(document)
    spec = pod["spec"]
    assert names(spec["containers"]) == ["ratings", "istio-proxy"]
    assert names(spec["initContainers"]) == ["istio-init"]
    # The app's own container and the rest of the Deployment are left as they were.
    assert spec["containers"][0] == pod_of(source)["spec"]["containers"][0]
    assert {k: v for k, v in document["spec"].items() if k != "template"} == {
        k: v for k, v in source["spec"].items() if k != "template"
    }
    proxy = container(pod, "istio-proxy")
    assert proxy["image"] == container(pod, "istio-init")["image"] == PROXY_IMAGE
    assert "restartPolicy" not in proxy
    flags = agent_flags(pod)
    # The pod's labels as they end up, the template's own included (the agent reports them).
    assert flags["labels"] == (
        "app=ratings,security.istio.io/tlsMode=istio,service.istio.io/canonical-name=ratings,"
        "service.istio.io/canonical-revision=v2,version=v2"
    )
    assert flags["ports"] == "http=9080,stats=9125"
    assert flags["discovery-address"] == "istiod.istio-system.svc:15012"
    assert flags["status-port"] == STATUS_PORT
    variables = env(proxy)
    assert (
        variables["ISTIO_META_OWNER"]
        == "kubernetes://apis/apps/v1/namespaces/shop/deployments/ratings"
    )
    assert variables["ISTIO_META_WORKLOAD_NAME"] == "ratings"
    assert variables["ISTIO_META_APP_CONTAINERS"] == "ratings"
    assert json.loads(variables["ISTIO_META_POD_PORTS"]) == [
        {"name": "http", "containerPort": 9080},
        {"name": "stats", "containerPort": 9125, "protocol": "UDP"},
    ]
    assert variables["ISTIO_META_CLUSTER_ID"] == "Kubernetes"
    assert "ISTIO_META_NETWORK" not in variables
    # Everything kubelet reads about the proxy's readiness goes to the agent (15021).
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15021}
    assert proxy["startupProbe"]["failureThreshold"] == 600


def test_istio_init_redirects_everything_but_the_agents_ports_by_default() -> None:
    [document] = inject("deployment.yaml")
    assert iptables(pod_of(document)) == {
        "-p": "15001", "-z": "15006", "-u": "1337", "-m": "REDIRECT", "-i": "*", "-x": "",
        "-b": "*", "-d": f"15090,15021,{STATUS_PORT}",
    }  # fmt: skip


def test_the_pod_is_labelled_annotated_and_given_the_proxys_volumes() -> None:
    [document] = inject("deployment.yaml")
    pod = pod_of(document)
    assert pod["metadata"]["labels"] == {
        "app": "ratings",
        "version": "v2",
        "security.istio.io/tlsMode": "istio",
        "service.istio.io/canonical-name": "ratings",
        "service.istio.io/canonical-revision": "v2",
    }
    annotations = pod["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == "ratings"
    assert annotations["istio.io/rev"] == "default"
    assert status(pod) == {
        "initContainers": ["istio-init"],
        "containers": ["istio-proxy"],
        "volumes": INSTALL_VOLUMES,
        "imagePullSecrets": None,
        "revision": "default",
    }
    assert names(pod["spec"]["volumes"]) == INSTALL_VOLUMES
    mounted = {m["name"] for m in container(pod, "istio-proxy")["volumeMounts"]}
    assert mounted == set(INSTALL_VOLUMES)


def test_a_bare_pod_is_its_own_workload() -> None:
    [pod] = inject("pod.yaml")
    assert names(pod["spec"]["containers"]) == ["shell", "istio-proxy"]
    variables = env(container(pod, "istio-proxy"))
    assert variables["ISTIO_META_OWNER"] == "kubernetes://apis/v1/namespaces/default/pods/toolbox"
    labels = pod["metadata"]["labels"]
    # The canonical service falls back on the app.kubernetes.io labels.
    assert labels["service.istio.io/canonical-name"] == "toolbox"
    assert labels["service.istio.io/canonical-revision"] == "0.3"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-key"}]
    assert status(pod)["imagePullSecrets"] is None  # the pod's own secret was not injected


# (kind, name, the owner's path: the namespace is the document's, else default)
WORKLOADS = [
    ("CronJob", "nightly-report", "apis/batch/v1/namespaces/jobs/cronjobs/nightly-report"),
    ("StatefulSet", "ledger", "apis/apps/v1/namespaces/default/statefulsets/ledger"),
    ("Job", "migrate", "apis/batch/v1/namespaces/default/jobs/migrate"),
    ("DaemonSet", "log-shipper", "apis/apps/v1/namespaces/default/daemonsets/log-shipper"),
    ("ReplicaSet", "cache", "apis/apps/v1/namespaces/default/replicasets/cache"),
    ("ReplicationController", "legacy-web", "apis/v1/namespaces/default/replicationcontrollers/legacy-web"),
]  # fmt: skip


def test_every_kind_with_a_pod_template_is_injected_and_named_as_the_owner() -> None:
    documents = inject("workloads.yaml")
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        (k, n) for k, n, _ in WORKLOADS
    ]
    for document, (kind, name, owner) in zip(documents, WORKLOADS, strict=True):
        pod = pod_of(document)
        assert names(pod["spec"]["containers"])[-1] == "istio-proxy", kind
        variables = env(container(pod, "istio-proxy"))
        assert variables["ISTIO_META_OWNER"] == f"kubernetes://{owner}", kind
        assert variables["ISTIO_META_WORKLOAD_NAME"] == name, kind
    # A CronJob's pod metadata is its job template's (where kube-inject writes it back).
    cronjob = documents[0]["spec"]["jobTemplate"]
    assert "sidecar.istio.io/status" in cronjob["metadata"]["annotations"]
    assert "metadata" not in cronjob["spec"]["template"]
    assert names(cronjob["spec"]["template"]["spec"]["initContainers"]) == ["istio-init"]
    ledger = agent_flags(pod_of(documents[1]))
    assert ledger["ports"] == "tcp-db=5432"


def test_a_list_has_each_item_injected_on_its_own() -> None:
    source = yaml.safe_load((TESTDATA / "list.yaml").read_text())
    [document] = inject("list.yaml")
    service, deployment = document["items"]
    assert service == source["items"][0]
    pod = pod_of(deployment)
    assert names(pod["spec"]["containers"]) == ["search", "istio-proxy"]
    # A port without a name is in the pod's ports but not among the agent's named ones.
    assert agent_flags(pod)["ports"] == ""
    assert json.loads(env(container(pod, "istio-proxy"))["ISTIO_META_POD_PORTS"]) == [
        {"containerPort": 7700}
    ]


def test_opted_out_and_host_network_pods_are_left_alone_with_a_warning() -> None:
    warnings: list[str] = []
    source = [d for d in yaml.safe_load_all((TESTDATA / "skipped.yaml").read_text())]
    assert inject_text((TESTDATA / "skipped.yaml").read_text(), warn=warnings.append) == source
    assert warnings == [
        '===> Skipping injection because Deployment "legacy" has sidecar injection disabled',
        '===> Skipping injection because DaemonSet "monitoring/node-exporter" has host networking enabled',
    ]


# --- native sidecars --------------------------------------------------------------------


def test_as_a_native_sidecar_the_proxy_is_an_init_container_after_istio_init() -> None:
    [document] = inject("deployment.yaml", install_settings(native=True))
    pod = pod_of(document)
    assert names(pod["spec"]["containers"]) == ["ratings"]
    assert names(pod["spec"]["initContainers"]) == ["istio-init", "istio-proxy"]
    assert container(pod, "istio-proxy")["restartPolicy"] == "Always"
    assert status(pod)["initContainers"] == ["istio-init", "istio-proxy"]
    assert status(pod)["containers"] is None


@pytest.mark.parametrize(("native", "annotation", "proxy_in"), [
    (True, "false", "containers"), (False, "true", "initContainers"),
])  # fmt: skip
def test_the_pods_native_sidecar_annotation_wins_over_the_setting(
    native: bool, annotation: str, proxy_in: str
) -> None:
    text = with_annotations("deployment.yaml", {"sidecar.istio.io/nativeSidecar": annotation})
    [document] = inject_text(text, install_settings(native=native))
    assert "istio-proxy" in names(pod_of(document)["spec"].get(proxy_in))


# --- the install's values and mesh --------------------------------------------------------


@pytest.mark.parametrize(("flag", "name", "field", "want"), [
    ("values.global.imagePullPolicy=Always", "istio-proxy", "imagePullPolicy", "Always"),
    ("values.global.imagePullPolicy=Never", "istio-init", "imagePullPolicy", "Never"),
    ("values.global.proxy.image=proxyTest", "istio-proxy", "image", f"{HUB}/proxyTest:{TAG}"),
    ("values.global.proxy.image=example.test/own/proxy:7", "istio-proxy", "image", "example.test/own/proxy:7"),
    ("values.global.proxy_init.image=initTest", "istio-init", "image", f"{HUB}/initTest:{TAG}"),
    ("values.global.variant=distroless", "istio-proxy", "image", f"{PROXY_IMAGE}-distroless"),
    ("values.global.hub=registry.example.test/mesh", "istio-init", "image", f"registry.example.test/mesh/proxyv2:{TAG}"),
])  # fmt: skip
def test_install_values_reach_the_containers(flag: str, name: str, field: str, want: str) -> None:
    [document] = inject("deployment.yaml", install_settings(flag))
    assert container(pod_of(document), name)[field] == want


def test_without_a_pull_policy_the_containers_have_none() -> None:
    [document] = inject("deployment.yaml", install_settings("values.global.imagePullPolicy="))
    pod = pod_of(document)
    assert "imagePullPolicy" not in container(pod, "istio-proxy")
    assert "imagePullPolicy" not in container(pod, "istio-init")


def test_the_installs_pull_secrets_are_added_and_recorded() -> None:
    [pod] = inject("pod.yaml", install_settings("values.global.imagePullSecrets=[mesh-pull]"))
    # Both kept (the order is the strategic merge's business).
    assert sorted(names(pod["spec"]["imagePullSecrets"])) == ["mesh-pull", "registry-key"]
    assert status(pod)["imagePullSecrets"] == ["mesh-pull"]


def test_the_network_labels_the_pod_and_tells_the_proxy() -> None:
    settings = install_settings(
        "values.global.network=network1", "values.global.multiCluster.clusterName=east"
    )
    [document] = inject("deployment.yaml", settings)
    pod = pod_of(document)
    variables = env(container(pod, "istio-proxy"))
    assert (variables["ISTIO_META_NETWORK"], variables["ISTIO_META_CLUSTER_ID"]) == (
        "network1",
        "east",
    )
    assert agent_flags(pod)["cluster-id"] == "east"
    assert pod["metadata"]["labels"]["topology.istio.io/network"] == "network1"


@pytest.mark.parametrize("how", [
    ("values.global.proxy.holdApplicationUntilProxyStarts=true",),
    ("meshConfig.defaultConfig.holdApplicationUntilProxyStarts=true",),
    ("annotation",),
])  # fmt: skip
def test_holding_the_application_puts_the_proxy_first(how: tuple[str]) -> None:
    if how == ("annotation",):
        text = with_annotations(
            "probes.yaml", {"proxy.istio.io/config": "holdApplicationUntilProxyStarts: true"}
        )
        [document] = inject_text(text)
    else:
        [document] = inject("probes.yaml", install_settings(*how))
    assert names(pod_of(document)["spec"]["containers"]) == ["istio-proxy", "api", "worker"]


def test_without_holding_the_application_the_proxy_is_last() -> None:
    [document] = inject("probes.yaml")
    assert names(pod_of(document)["spec"]["containers"]) == ["api", "worker", "istio-proxy"]


@pytest.mark.parametrize("how", ["mesh", "annotation"])
def test_tproxy_interception_reaches_istio_init_and_the_agent(how: str) -> None:
    if how == "mesh":
        [document] = inject(
            "deployment.yaml", install_settings("meshConfig.defaultConfig.interceptionMode=TPROXY")
        )
    else:
        [document] = inject_text(
            with_annotations("deployment.yaml", {"sidecar.istio.io/interceptionMode": "TPROXY"})
        )
    pod = pod_of(document)
    assert iptables(pod)["-m"] == "TPROXY"
    assert env(container(pod, "istio-proxy"))["ISTIO_META_INTERCEPTION_MODE"] == "TPROXY"


def test_no_interception_means_no_istio_init() -> None:
    text = with_annotations("deployment.yaml", {"sidecar.istio.io/interceptionMode": "NONE"})
    [document] = inject_text(text)
    pod = pod_of(document)
    assert "initContainers" not in pod["spec"]
    assert status(pod)["initContainers"] is None


def test_drain_duration_from_the_mesh_is_printed_as_go_does() -> None:
    [document] = inject(
        "deployment.yaml", install_settings("meshConfig.defaultConfig.drainDuration=90s")
    )
    pod = pod_of(document)
    assert agent_flags(pod)["drain-duration"] == "1m30s"
    assert json.loads(env(container(pod, "istio-proxy"))["PROXY_CONFIG"])["drainDuration"] == "90s"


# --- traffic and status settings ------------------------------------------------------------


def test_traffic_annotations_choose_what_istio_init_redirects() -> None:
    [document] = inject("traffic.yaml")
    pod = pod_of(document)
    assert iptables(pod) == {
        "-p": "15001", "-z": "15006", "-u": "1337", "-m": "REDIRECT",
        "-i": "10.20.0.0/16,192.168.7.0/24", "-x": "10.20.99.0/24", "-b": "8080,8443",
        "-d": f"15090,15021,9901,{STATUS_PORT}", "-q": "5432", "-o": "6379,11211", "-c": "eth9",
    }  # fmt: skip
    proxy = container(pod, "istio-proxy")
    readiness = proxy["readinessProbe"]
    assert (
        readiness["initialDelaySeconds"],
        readiness["periodSeconds"],
        readiness["failureThreshold"],
    ) == (3, 9, 12)
    # The resource annotations replace the install's requests and limits.
    assert proxy["resources"] == {"requests": {"cpu": "250m", "memory": "300Mi"}}
    assert container(pod, "istio-init")["resources"] == proxy["resources"]


def test_traffic_values_apply_to_pods_without_annotations() -> None:
    settings = install_settings(
        "values.global.proxy.includeIPRanges=127.0.0.1/24,10.96.0.1/24",
        "values.global.proxy.excludeIPRanges=10.96.0.2/24",
        "values.global.proxy.excludeInboundPorts=4,5,6",
        "values.global.proxy.excludeOutboundPorts=25",
        "values.global.proxy.statusPort=0",
    )
    [document] = inject("deployment.yaml", settings)
    pod = pod_of(document)
    flags = iptables(pod)
    assert (flags["-i"], flags["-x"], flags["-o"]) == (
        "127.0.0.1/24,10.96.0.1/24",
        "10.96.0.2/24",
        "25",
    )
    assert flags["-d"] == "15090,15021,4,5,6"  # status port 0: nothing of its own to exclude
    proxy = container(pod, "istio-proxy")
    assert "readinessProbe" not in proxy
    assert "startupProbe" not in proxy


def test_status_values_set_the_agents_port_and_readiness() -> None:
    settings = install_settings(
        "values.global.proxy.statusPort=123",
        "values.global.proxy.readinessInitialDelaySeconds=100",
        "values.global.proxy.readinessPeriodSeconds=200",
        "values.global.proxy.readinessFailureThreshold=300",
    )
    [document] = inject("deployment.yaml", settings)
    pod = pod_of(document)
    assert agent_flags(pod)["status-port"] == "123"
    assert iptables(pod)["-d"] == "15090,15021,123"
    readiness = container(pod, "istio-proxy")["readinessProbe"]
    assert (
        readiness["initialDelaySeconds"],
        readiness["periodSeconds"],
        readiness["failureThreshold"],
    ) == (100, 200, 300)


def test_the_status_port_annotation_moves_the_agent_and_the_rewritten_probes() -> None:
    [document] = inject_text(
        with_annotations("probes.yaml", {"status.sidecar.istio.io/port": "15555"})
    )
    pod = pod_of(document)
    assert agent_flags(pod)["status-port"] == "15555"
    assert iptables(pod)["-d"] == "15090,15021,15555"
    assert container(pod, "api")["readinessProbe"]["httpGet"]["port"] == 15555


# (annotation, value, what the error says)
BAD_ANNOTATIONS = [
    ("traffic.sidecar.istio.io/includeOutboundIPRanges", "10.0.0.0/33", "includeIPRanges invalid"),
    ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "10.1.2.3", "excludeIPRanges invalid"),
    ("traffic.sidecar.istio.io/includeInboundPorts", "80,http", "includeInboundPorts invalid"),
    ("traffic.sidecar.istio.io/excludeInboundPorts", "70000", "value out of range"),
    ("traffic.sidecar.istio.io/excludeOutboundPorts", "25;26", "excludeOutboundPorts invalid"),
    ("sidecar.istio.io/interceptionMode", "MAGIC", "use REDIRECT,TPROXY,NONE"),
    ("sidecar.istio.io/proxyCPU", "lots", "quantities must match"),
    ("readiness.status.sidecar.istio.io/periodSeconds", "-1", "invalid syntax"),
    ("proxy.istio.io/config", "concurrency: [", "failed to convert to apply proxy config"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("annotation", "value", "reason"),
    BAD_ANNOTATIONS,
    ids=[b[0].rpartition("/")[2] for b in BAD_ANNOTATIONS],
)
def test_bad_annotations_are_refused_with_the_annotation_and_value(
    annotation: str, value: str, reason: str
) -> None:
    with pytest.raises(kubeinject.KubeInjectError) as error:
        inject_text(with_annotations("deployment.yaml", {annotation: value}))
    message = str(error.value)
    assert message.startswith("Deployment shop/ratings: ")
    assert f"invalid value '{value}' for annotation '{annotation}'" in message
    assert reason in message


def test_good_traffic_annotations_of_every_shape_are_accepted() -> None:
    annotations = {
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "*",
        "traffic.sidecar.istio.io/includeInboundPorts": "",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges": "fd00::/8,10.0.0.0/8",
    }
    [document] = inject_text(with_annotations("deployment.yaml", annotations))
    flags = iptables(pod_of(document))
    assert (flags["-i"], flags["-b"], flags["-x"]) == ("*", "", "fd00::/8,10.0.0.0/8")


# --- probes --------------------------------------------------------------------------------


def test_app_probes_go_through_the_agent_which_is_told_the_originals() -> None:
    source = pod_of(yaml.safe_load((TESTDATA / "probes.yaml").read_text()))
    [document] = inject("probes.yaml")
    pod = pod_of(document)
    api = container(pod, "api")
    assert api["readinessProbe"] == {
        "httpGet": {"path": "/app-health/api/readyz", "port": 15020, "scheme": "HTTP"},
        "periodSeconds": 7, "timeoutSeconds": 2,
    }  # fmt: skip
    assert api["livenessProbe"] == {
        "httpGet": {"path": "/app-health/api/livez", "port": 15020},
        "initialDelaySeconds": 11,
    }
    assert api["startupProbe"] == {
        "httpGet": {"path": "/app-health/api/startupz", "port": 15020},
        "failureThreshold": 30,
    }
    assert api["lifecycle"]["preStop"] == {
        "httpGet": {"path": "/app-lifecycle/api/prestopz", "port": 15020}
    }
    # An exec probe needs no network: it stays.
    assert container(pod, "worker") == source["spec"]["containers"][1]
    probers = json.loads(env(container(pod, "istio-proxy"))["ISTIO_KUBE_APP_PROBERS"])
    assert probers == {
        "/app-health/api/readyz": {"httpGet": {"path": "/ready", "port": 8000, "scheme": "HTTPS"}, "timeoutSeconds": 2},
        "/app-health/api/livez": {"tcpSocket": {"port": 8001}},
        "/app-health/api/startupz": {"grpc": {"port": 8002}},
        "/app-lifecycle/api/prestopz": {"httpGet": {"path": "/drain", "port": 8001}},
    }  # fmt: skip
    assert env(container(pod, "istio-proxy"))["ISTIO_META_APP_CONTAINERS"] == "api,worker"


@pytest.mark.parametrize("how", ["annotation", "values"])
def test_probe_rewriting_can_be_turned_off(how: str) -> None:
    source = pod_of(yaml.safe_load((TESTDATA / "probes.yaml").read_text()))
    if how == "annotation":
        text = with_annotations("probes.yaml", {"sidecar.istio.io/rewriteAppHTTPProbers": "false"})
        [document] = inject_text(text)
    else:
        [document] = inject(
            "probes.yaml",
            install_settings("values.sidecarInjectorWebhook.rewriteAppHTTPProbe=false"),
        )
    pod = pod_of(document)
    assert container(pod, "api") == source["spec"]["containers"][0]
    assert "ISTIO_KUBE_APP_PROBERS" not in env(container(pod, "istio-proxy"))


# --- Prometheus ------------------------------------------------------------------------------


def test_the_apps_scrape_settings_move_to_the_agent() -> None:
    [pod] = inject("prometheus.yaml")
    annotations = pod["metadata"]["annotations"]
    assert (
        annotations["prometheus.io/port"],
        annotations["prometheus.io/path"],
        annotations["prometheus.io/scrape"],
    ) == (STATUS_PORT, "/stats/prometheus", "true")
    scraped = json.loads(env(container(pod, "istio-proxy"))["ISTIO_PROMETHEUS_ANNOTATIONS"])
    assert scraped == {"scrape": "true", "path": "/custom-metrics", "port": "9102"}


def test_without_merged_metrics_the_apps_scrape_settings_stay() -> None:
    [pod] = inject_text(
        with_annotations("prometheus.yaml", {"prometheus.istio.io/merge-metrics": "false"})
    )
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9102"
    assert "ISTIO_PROMETHEUS_ANNOTATIONS" not in env(container(pod, "istio-proxy"))


# --- the pod's own istio-proxy -----------------------------------------------------------------


def test_the_pods_own_proxy_fields_win_and_its_user_is_not_redirected() -> None:
    [document] = inject("proxy-override.yaml")
    pod = pod_of(document)
    proxy = container(pod, "istio-proxy")
    assert names(pod["spec"]["containers"]) == ["tuned", "istio-proxy"]
    assert proxy["image"] == PROXY_IMAGE  # "auto": the template's image
    assert proxy["resources"]["limits"] == {"cpu": "2000m", "memory": "2Gi"}
    assert proxy["securityContext"]["runAsUser"] == 4321
    assert proxy["securityContext"]["readOnlyRootFilesystem"] is True  # the rest is the template's
    assert iptables(pod)["-u"] == "4321"
    overrides = json.loads(pod["metadata"]["annotations"]["proxy.istio.io/overrides"])
    assert overrides == {
        "containers": [
            {
                "name": "istio-proxy",
                "resources": {"limits": {"memory": "2Gi"}},
                "securityContext": {"runAsUser": 4321},
            }
        ]
    }


def test_with_tproxy_the_pods_own_proxy_runs_as_root() -> None:
    [document] = inject(
        "proxy-override.yaml", install_settings("meshConfig.defaultConfig.interceptionMode=TPROXY")
    )
    pod = pod_of(document)
    assert container(pod, "istio-proxy")["securityContext"]["runAsUser"] == 0
    assert iptables(pod)["-u"] == "4321"


# --- injecting twice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["deployment.yaml", "pod.yaml", "list.yaml", "workloads.yaml", "traffic.yaml"]
)
@pytest.mark.parametrize("native", [False, True])
def test_injecting_twice_changes_nothing(name: str, native: bool) -> None:
    # The status annotation says what was added; a second injection replaces just that.
    settings = install_settings(native=native)
    once = kubeinject.into_resource_text((TESTDATA / name).read_text(), settings)
    twice = kubeinject.into_resource_text(once, settings)
    assert list(yaml.safe_load_all(twice)) == list(yaml.safe_load_all(once))


@pytest.mark.parametrize("name", ["probes.yaml", "prometheus.yaml"])
def test_injecting_twice_keeps_the_proxys_env_order(name: str) -> None:
    once = inject(name)
    [twice] = inject_text(yaml.safe_dump_all(once))
    assert (
        container(pod_of(twice), "istio-proxy")["env"]
        == container(pod_of(once[0]), "istio-proxy")["env"]
    )


def test_injecting_twice_keeps_the_pods_own_proxy_fields() -> None:
    [twice] = inject_text(yaml.safe_dump_all(inject("proxy-override.yaml")))
    proxy = container(pod_of(twice), "istio-proxy")
    assert (proxy["resources"]["limits"]["memory"], proxy["securityContext"]["runAsUser"]) == (
        "2Gi",
        4321,
    )


def test_injecting_twice_keeps_what_the_agent_is_told_of_the_probes() -> None:
    # The second injection sees probes already rewritten: the agent keeps the originals.
    once = inject("probes.yaml")
    [twice] = inject_text(yaml.safe_dump_all(once))
    first = env(container(pod_of(once[0]), "istio-proxy"))["ISTIO_KUBE_APP_PROBERS"]
    again = env(container(pod_of(twice), "istio-proxy"))["ISTIO_KUBE_APP_PROBERS"]
    assert json.loads(again) == json.loads(first)
    assert container(pod_of(twice), "api") == container(pod_of(once[0]), "api")


def test_the_canonical_name_is_cut_to_a_label_values_length() -> None:
    long_name = "a" * 60 + "-b-c"  # 64 characters: cut to 63, then the trailing "-" goes
    document = yaml.safe_load((TESTDATA / "deployment.yaml").read_text())
    pod_of(document)["metadata"]["labels"]["app"] = long_name
    [injected] = inject_text(yaml.safe_dump(document))
    assert (
        pod_of(injected)["metadata"]["labels"]["service.istio.io/canonical-name"] == "a" * 60 + "-b"
    )


def test_a_revision_is_recorded_on_the_pod() -> None:
    settings = dataclasses.replace(install_settings(), revision="canary")
    [document] = inject("deployment.yaml", settings)
    pod = pod_of(document)
    assert status(pod)["revision"] == "canary"
    assert pod["metadata"]["annotations"]["istio.io/rev"] == "canary"


# --- what only Istio's template does, with templates of our own ----------------------------------

# As Istio's template does with CNI: istio-validation (checks the CNI plugin's rules) instead
# of istio-init; a core-dump init container when the pod asks.
CNI_TEMPLATE = """spec:
  initContainers:
  {{- if .Values.pilot.cni.enabled }}
  - name: istio-validation
    image: {{ .ProxyInitImage | quote }}
    args: [istio-iptables, --run-validation, -u, {{ .ProxyUID | quote }}]
  {{- else }}
  - name: istio-init
    image: {{ .ProxyInitImage | quote }}
    args: [istio-iptables, -u, {{ .ProxyUID | quote }}]
  {{- end }}
  {{- if eq (annotation .ObjectMeta `sidecar.istio.io/enableCoreDump` "false") "true" }}
  - name: enable-core-dump
    image: {{ .ProxyInitImage | quote }}
  {{- end }}
  {{- if .NativeSidecars }}
  - name: istio-proxy
    restartPolicy: Always
  {{- else }}
  containers:
  - name: istio-proxy
  {{- end }}
    image: {{ .ProxyImage | quote }}
    securityContext: {runAsUser: {{ .ProxyUID }}, runAsGroup: {{ .ProxyGID }}}
"""
EXTRA_TEMPLATE = """metadata:
  labels:
    extra.example.test/by: {{ .DeploymentMeta.Name | quote }}
spec:
  containers:
  - name: istio-proxy
    env:
    - name: EXTRA
      value: {{ index .ObjectMeta.Labels "app" | default "none" | quote }}
"""


def own_settings(values: dict[str, Any], *, native: bool = False, aliases: str = "") -> Settings:
    config = yaml.safe_dump({"templates": {"sidecar": CNI_TEMPLATE, "extra": EXTRA_TEMPLATE}})
    return dataclasses.replace(
        install_settings(native=native),
        config=parse_config(config + aliases),
        values={"global": {"hub": "hub.example.test", "tag": "1"}, **values},
    )


CNI = {"pilot": {"cni": {"enabled": True}}}
NO_CNI = {"pilot": {"cni": {"enabled": False}}}
WITH_INIT = """apiVersion: v1
kind: Pod
metadata:
  name: app
  annotations: {sidecar.istio.io/enableCoreDump: "true"}
spec:
  initContainers: [{name: migrate, image: migrate:1}]
  containers:
  - {name: app, image: app:1}
  - {name: istio-proxy, image: auto, securityContext: {runAsUser: 4321, runAsGroup: 99}}
"""


def test_with_cni_istio_validation_takes_the_pods_proxy_user() -> None:
    [pod] = inject_text(WITH_INIT, own_settings(CNI))
    validation = container(pod, "istio-validation")
    assert validation["securityContext"] == {"runAsUser": 4321, "runAsGroup": 99}
    assert validation["args"][-2:] == ["-u", "4321"]
    assert validation["image"] == "hub.example.test/proxyv2:1"


def test_without_cni_istio_init_takes_only_the_uid() -> None:
    [pod] = inject_text(WITH_INIT, own_settings(NO_CNI))
    init = container(pod, "istio-init")
    assert "securityContext" not in init
    assert init["args"][-2:] == ["-u", "4321"]


@pytest.mark.parametrize(("values", "native", "order"), [
    # As a container, the proxy's helpers go around the pod's own init containers ...
    (CNI, False, ["istio-validation", "migrate", "enable-core-dump"]),
    (NO_CNI, False, ["migrate", "istio-init", "enable-core-dump"]),
    # ... as a native sidecar, they and the proxy come first, so the proxy serves the others.
    (CNI, True, ["istio-validation", "istio-proxy", "enable-core-dump", "migrate"]),
    (NO_CNI, True, ["istio-init", "istio-proxy", "enable-core-dump", "migrate"]),
])  # fmt: skip
def test_the_injected_init_containers_are_ordered_around_the_pods_own(
    values: dict[str, Any], native: bool, order: list[str]
) -> None:
    [pod] = inject_text(WITH_INIT, own_settings(values, native=native))
    assert names(pod["spec"]["initContainers"]) == order
    assert pod["spec"]["containers"][0]["name"] == "app"


def test_the_templates_annotation_picks_templates_and_aliases() -> None:
    deployment = with_annotations("deployment.yaml", {"inject.istio.io/templates": "sidecar,extra"})
    [document] = inject_text(deployment, own_settings(NO_CNI))
    pod = pod_of(document)
    assert pod["metadata"]["labels"]["extra.example.test/by"] == "ratings"
    assert env(container(pod, "istio-proxy"))["EXTRA"] == "ratings"
    aliased = with_annotations("deployment.yaml", {"inject.istio.io/templates": "both"})
    [again] = inject_text(
        aliased, own_settings(NO_CNI, aliases="aliases:\n  both: [sidecar, extra]\n")
    )
    assert pod_of(again)["spec"] == pod["spec"]
    assert pod_of(again)["metadata"]["labels"] == pod["metadata"]["labels"]


def test_an_unknown_template_is_refused_by_name() -> None:
    deployment = with_annotations(
        "deployment.yaml", {"inject.istio.io/templates": "sidecar,gateway"}
    )
    with pytest.raises(
        kubeinject.KubeInjectError,
        match='requested template "gateway" not found; have extra, sidecar',
    ):
        inject_text(deployment, own_settings(NO_CNI))
