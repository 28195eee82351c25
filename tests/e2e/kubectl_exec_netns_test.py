"""Istio's tasks' client, as they drive it: `kubectl exec` into the sleep sample's pod.

The kube platform with every pod in its own network namespace and istio-init's capture (as
`make bookinfo` runs where the machine allows). `kubectl apply -f samples/sleep/sleep.yaml -f
samples/httpbin/httpbin.yaml` into the injected default namespace, then, as Istio's traffic
and security tasks do, `kubectl exec deploy/sleep -c sleep -- curl -sS
http://httpbin:8000/headers`: the host's curl, run by the kubelet in the sleep pod's namespace
(its hosts file, its capture) as the container's user, through the sleep pod's sidecar to
httpbin's. Also the task's `$SOURCE_POD` form, exit codes, stdin, the Python client's
`stream`, and Kubernetes' refusals. Names start with `ke<MESH_TEST_NET>-66-`, pods are in
10.<100+MESH_TEST_NET>.66.0/24. Needs root, `ip`, iptables and setpriv.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import pytest
from kubernetes import client as kube
from kubernetes import config as kubeconfig
from kubernetes.stream import stream

from pkg.testing.wait import poll
from tests.e2e.kube_platform_test import POD_START, Cluster
from tests.e2e.kubectl_exec_test import curl_headers
from tests.e2e.meshtest import NEEDS_NETNS, ROOT, MeshUnderTest, captured_pods, loopback_subnet
from tools.local import netnssandbox
from tools.local.podnetwork import NodeNetwork

NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = loopback_subnet(66)
NETWORK = NodeNetwork(prefix=f"ke{NET}-66-", cidr=f"10.{100 + NET}.66.0/24")
SLEEP = ROOT / "samples/sleep/sleep.yaml"
HTTPBIN = ROOT / "samples/httpbin/httpbin.yaml"
CURL_USER = "100"  # curlimages/curl's USER, from the image table
# What only Envoys add: the client sidecar's router (attempt count, trace ids) or the server
# sidecar under mutual TLS (the client's certificate).
ENVOY_HEADERS = ("X-Envoy-Attempt-Count", "X-B3-Traceid", "X-Forwarded-Client-Cert")

pytestmark = NEEDS_NETNS


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run_dir = tmp_path_factory.mktemp("exec-mesh")
    mesh = MeshUnderTest(run_dir, SUBNET, platform="kube", bookinfo=False, **captured_pods(NETWORK))
    with mesh:
        cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
        try:
            cluster.run("label", "namespace", "default", "istio-injection=enabled")
            cluster.run("apply", "-f", str(SLEEP), "-f", str(HTTPBIN))
            for selector in ("app=sleep", "app=httpbin"):
                poll(functools.partial(cluster.ready, selector), f"{selector} ready", POD_START)
            yield cluster
        finally:
            for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                if log.parent.parent.name.startswith("default_"):
                    print(f"--- {log.parent.parent.name}/{log.name} ---")
                    print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")
    assert netnssandbox.namespaces(NETWORK) == []


def test_curl_from_the_sleep_pod_reaches_httpbin_through_its_sidecar(cluster: Cluster):
    headers = poll(lambda: curl_headers(cluster), "curl from sleep to httpbin", POD_START)
    assert headers is not None
    print(f"httpbin saw: {headers}")
    assert headers["Host"] == "httpbin:8000"
    assert [h for h in ENVOY_HEADERS if h in headers], headers
    # Mutual TLS from the sleep pod's sidecar, with the sleep service account's identity.
    assert "URI=spiffe://cluster.local/ns/default/sa/sleep" in headers["X-Forwarded-Client-Cert"]


def test_the_tasks_source_pod_form(cluster: Cluster):
    source = cluster.run("get", "pod", "-l", "app=sleep", "-o", "jsonpath={.items..metadata.name}")
    done = cluster.kubectl.run(
        "exec",
        source,
        "-c",
        "sleep",
        "--",
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://httpbin:8000/status/418",
    )
    assert done.stdout == "418"


def test_the_command_runs_in_the_pod_as_the_containers_user(cluster: Cluster):
    (pod,) = cluster.ready("app=sleep")
    done = cluster.kubectl.run(
        "exec",
        "deploy/sleep",
        "-c",
        "sleep",
        "--",
        "sh",
        "-c",
        "id -u; echo $HOSTNAME; cat /etc/hosts",
    )
    user, hostname, hosts = done.stdout.split("\n", 2)
    assert user == CURL_USER
    assert hostname == pod["metadata"]["name"]
    assert "httpbin.default.svc.cluster.local" in hosts  # the pod's own hosts file
    assert pod["status"]["podIP"] in hosts


def test_exit_codes_and_stdin(cluster: Cluster):
    done = cluster.kubectl.run(
        "exec", "deploy/sleep", "-c", "sleep", "--", "sh", "-c", "exit 3", check=False
    )
    assert done.returncode == 3, done.stderr
    echoed = cluster.kubectl.run(
        "exec", "-i", "deploy/sleep", "-c", "sleep", "--", "cat", input="through the pod\n"
    )
    assert echoed.stdout == "through the pod\n"


def test_kubernetes_refusals(cluster: Cluster):
    missing = cluster.kubectl.run("exec", "sleep-nope", "-c", "sleep", "--", "true", check=False)
    assert 'Error from server (NotFound): pods "sleep-nope" not found' in missing.stderr
    (pod,) = cluster.ready("app=sleep")
    name = pod["metadata"]["name"]
    other = cluster.kubectl.run("exec", name, "-c", "nope", "--", "true", check=False)
    assert f"container nope is not valid for pod {name}" in other.stderr


def test_the_python_clients_stream(cluster: Cluster):
    (pod,) = cluster.ready("app=sleep")
    api = kubeconfig.new_client_from_config(config_file=str(cluster.kubectl.kubeconfig))
    try:
        core = kube.CoreV1Api(api)
        out = stream(
            core.connect_get_namespaced_pod_exec,
            pod["metadata"]["name"],
            "default",
            command=["curl", "-sS", "http://httpbin:8000/headers"],
            container="sleep",
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
    finally:
        api.close()
    assert "httpbin:8000" in out


def test_without_c_kubectl_picks_the_app_by_injections_default_container(cluster: Cluster):
    # Injection names the app `kubectl.kubernetes.io/default-container`, so `-c sleep` may go.
    done = cluster.kubectl.run("exec", "deploy/sleep", "--", "id", "-u")
    assert done.stdout.strip() == CURL_USER


def test_a_terminal_inside_the_pods_namespace(cluster: Cluster):
    (pod,) = cluster.ready("app=sleep")
    api = kubeconfig.new_client_from_config(config_file=str(cluster.kubectl.kubeconfig))
    try:
        out = stream(
            kube.CoreV1Api(api).connect_get_namespaced_pod_exec,
            pod["metadata"]["name"],
            "default",
            command=["sh", "-c", "tty && id -u"],
            container="sleep",
            stderr=True,
            stdin=False,
            stdout=True,
            tty=True,
        )
    finally:
        api.close()
    terminal, user = out.split("\r\n")[:2]
    assert terminal.startswith("/dev/pts/")
    assert user == CURL_USER
