"""The real kubectl with Kubernetes' own kinds, against a store started as its own process.

What a user of a cluster types: apply Istio's bookinfo.yaml, get Services and Deployments
with Kubernetes' columns, scale, set images and env (strategic merge patches), explain, make
Secrets and ConfigMaps, write a pod's status and read it back. One store for the module.
"""

from __future__ import annotations

import base64
import json
import pathlib
from collections.abc import Iterator

import pytest
import yaml

from pilot.configstore.testing import Kubectl, StoreProcess, namespace_for

ROOT = pathlib.Path(__file__).absolute().parents[2]
BOOKINFO = ROOT / "samples/bookinfo/platform/kube/bookinfo.yaml"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreProcess]:
    directory = tmp_path_factory.mktemp("store")
    with StoreProcess(directory / "config.db", system_namespaces=True) as process:
        yield process


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    return namespace_for(request.node.name)


@pytest.fixture
def kubectl(store: StoreProcess, tmp_path: pathlib.Path, ns: str) -> Kubectl:
    return Kubectl(store.url, tmp_path / "home", namespace=ns)


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_istios_bookinfo_applies_and_applies_again_unchanged(kubectl: Kubectl):
    created = kubectl.run("apply", "-f", str(BOOKINFO)).stdout
    assert created.count(" created") == 14
    assert "deployment.apps/reviews-v3 created" in created
    again = kubectl.run("apply", "-f", str(BOOKINFO)).stdout
    assert again.count(" unchanged") == 14, again
    services = rows(kubectl.run("get", "services").stdout)
    assert services[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    reviews = next(r for r in services if r[0] == "reviews")
    assert reviews[1] == "ClusterIP"
    assert reviews[2].startswith("10.96.")
    assert reviews[3:5] == ["<none>", "9080/TCP"]
    ips = {r[2] for r in services[1:]}
    assert len(ips) == 4  # one address each
    deployments = rows(kubectl.run("get", "deployments").stdout)
    assert deployments[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert next(r for r in deployments if r[0] == "reviews-v3")[:2] == ["reviews-v3", "0/1"]
    accounts = kubectl.run("get", "serviceaccounts", "-l", "account=reviews", "-o", "name").stdout
    assert accounts.split() == ["serviceaccount/bookinfo-reviews"]
    # Kubernetes' defaults, as the API server fills them in.
    service = json.loads(kubectl.run("get", "service", "reviews", "-o", "json").stdout)
    port = service["spec"]["ports"][0]
    assert (port["protocol"], port["targetPort"]) == ("TCP", 9080)
    assert service["spec"]["clusterIPs"] == [service["spec"]["clusterIP"]]
    deployment = json.loads(kubectl.run("get", "deployment", "reviews-v1", "-o", "json").stdout)
    template = deployment["spec"]["template"]["spec"]
    assert (template["restartPolicy"], template["terminationGracePeriodSeconds"]) == ("Always", 30)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": "25%",
        "maxUnavailable": "25%",
    }


def test_scale_set_image_and_set_env_are_strategic_patches(kubectl: Kubectl):
    kubectl.run("apply", "-f", str(BOOKINFO), "-l", "app=reviews,version=v3")
    assert kubectl.run("scale", "deployment", "reviews-v3", "--replicas=0").stdout.strip() == (
        "deployment.apps/reviews-v3 scaled"
    )
    replicas = kubectl.run("get", "deployment", "reviews-v3", "-o", "jsonpath={.spec.replicas}")
    assert replicas.stdout == "0"
    kubectl.run("set", "image", "deployment/reviews-v3", "reviews=example/reviews:2")
    kubectl.run("set", "env", "deployment/reviews-v3", "EXTRA=1")
    kubectl.run("set", "env", "deployment/reviews-v3", "LOG_DIR-")
    deployment = json.loads(kubectl.run("get", "deployment", "reviews-v3", "-o", "json").stdout)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "example/reviews:2"
    assert container["env"] == [{"name": "EXTRA", "value": "1"}]
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp", "wlp-output"]  # merged, kept
    # A change of the selector is refused, as on a cluster.
    patch = '{"spec":{"selector":{"matchLabels":{"app":"other"}}}}'
    refused = kubectl.run("patch", "deployment", "reviews-v3", "-p", patch, check=False)
    assert refused.returncode != 0
    assert "field is immutable" in refused.stderr


def test_a_pods_status_and_its_columns(kubectl: Kubectl, ns: str):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "example/web:1"}]},
    }
    kubectl.run("apply", "-f", "-", input=yaml.safe_dump(pod))
    listed = rows(kubectl.run("get", "pods").stdout)
    assert listed == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["web", "0/1", "Pending", "0", listed[1][4]],
    ]
    created = json.loads(kubectl.run("get", "pod", "web", "-o", "json").stdout)
    assert created["spec"]["serviceAccountName"] == "default"
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    status = {
        "status": {
            "phase": "Running",
            "podIP": "10.1.0.9",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "web",
                    "image": "example/web:1",
                    "imageID": "",
                    "ready": True,
                    "restartCount": 2,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                }
            ],
        }
    }
    kubectl.run(
        "patch", "pod", "web", "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )
    wide = rows(kubectl.run("get", "pods", "-o", "wide").stdout)
    assert wide[1][:4] == ["web", "1/1", "Running", "2"]
    assert "10.1.0.9" in wide[1]
    # The main resource does not write status: an apply of the pod leaves it as it is.
    kubectl.run("label", "pod", "web", "tier=front")
    assert (
        json.loads(kubectl.run("get", "pod", "web", "-o", "json").stdout)["status"]["phase"]
        == "Running"
    )
    # A pod's spec does not change but for its images.
    refused = kubectl.run(
        "patch",
        "pod",
        "web",
        "-p",
        '{"spec":{"activeDeadlineSeconds":5,"hostname":"x"}}',
        check=False,
    )
    assert refused.returncode != 0
    assert "pod updates may not change fields" in refused.stderr
    selected = kubectl.run("get", "pods", "--field-selector", "status.phase=Running", "-o", "name")
    assert selected.stdout.split() == ["pod/web"]
    assert kubectl.run(
        "get", "pods", "--field-selector", "spec.nodeName=nowhere"
    ).stderr.startswith("No resources")


def create(kubectl: Kubectl, *args: str) -> None:
    """`kubectl create KIND ...` made on kubectl's side and applied: kubectl's typed create
    sends protobuf, which the store does not read (it answers 415, as for any media type it
    does not know); the generated object is the same."""
    made = kubectl.run("create", *args, "--dry-run=client", "-o", "yaml").stdout
    kubectl.run("apply", "-f", "-", input=made)


def test_kubectls_typed_create_is_told_the_media_types_the_store_reads(kubectl: Kubectl):
    refused = kubectl.run("create", "secret", "generic", "creds", "--from-literal=a=1", check=False)
    assert refused.returncode != 0
    assert "accepted media types include: application/json, application/yaml" in refused.stderr


def test_secrets_configmaps_and_namespaces(kubectl: Kubectl, ns: str):
    create(kubectl, "secret", "generic", "creds", "--from-literal=user=jason")
    secret = json.loads(kubectl.run("get", "secret", "creds", "-o", "json").stdout)
    assert base64.b64decode(secret["data"]["user"]) == b"jason"
    assert rows(kubectl.run("get", "secrets").stdout)[1][:3] == ["creds", "Opaque", "1"]
    create(kubectl, "configmap", "settings", "--from-literal=a=1", "--from-literal=b=2")
    assert rows(kubectl.run("get", "configmaps").stdout)[1][:2] == ["settings", "2"]
    create(kubectl, "namespace", f"{ns}-extra")
    kubectl.run("label", "namespace", f"{ns}-extra", "istio-injection=enabled")
    namespaces = rows(kubectl.run("get", "namespaces", "-l", "istio-injection=enabled").stdout)
    assert namespaces[1][:2] == [f"{ns}-extra", "Active"]
    system = kubectl.run("get", "namespaces", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system", "namespace/kube-public"} <= set(system)
    labels = json.loads(kubectl.run("get", "namespace", f"{ns}-extra", "-o", "json").stdout)
    assert labels["metadata"]["labels"]["kubernetes.io/metadata.name"] == f"{ns}-extra"
    assert "namespace" not in labels["metadata"]


def test_explain_and_a_refused_field(kubectl: Kubectl):
    explained = kubectl.run("explain", "pod.spec.containers.ports").stdout
    assert "containerPort" in explained
    assert "<integer>" in explained
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bad"},
        "spec": {"ports": [{"port": 80, "colour": "red"}]},
    }
    refused = kubectl.run(
        "apply", "--validate=false", "-f", "-", input=yaml.safe_dump(bad), check=False
    )
    assert refused.returncode != 0
    assert 'spec.ports[0].colour: unknown field "spec.ports[0].colour"' in refused.stderr
    taken = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "fixed"},
        "spec": {"clusterIP": "10.96.200.200", "ports": [{"port": 80}]},
    }
    kubectl.run("apply", "-f", "-", input=yaml.safe_dump(taken))
    again = {**taken, "metadata": {"name": "twin"}}
    refused = kubectl.run("apply", "-f", "-", input=yaml.safe_dump(again), check=False)
    assert "provided IP is already allocated" in refused.stderr
