"""`kubectl exec` into the sleep sample's pod on the loopback platform (no root needed).

Pods have their own 127.x addresses and no capture: the kubelet runs an exec'd command as a
plain process with the container's environment, whose `http_proxy` is the pod's sidecar, so
the tasks' `kubectl exec deploy/sleep -c sleep -- curl -sS http://httpbin:8000/headers` goes
through the sleep pod's Envoy to httpbin's. Subnet 127.<MESH_TEST_NET>.67.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator

import pytest

from pkg.testing.wait import poll
from tests.e2e.kube_platform_test import POD_START, Cluster
from tests.e2e.meshtest import ROOT, MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(67)
SLEEP = ROOT / "samples/sleep/sleep.yaml"
HTTPBIN = ROOT / "samples/httpbin/httpbin.yaml"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run_dir = tmp_path_factory.mktemp("exec-loopback-mesh")
    with MeshUnderTest(run_dir, SUBNET, platform="kube", bookinfo=False) as mesh:
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


def curl_headers(cluster: Cluster, target: str = "deploy/sleep") -> dict[str, str] | None:
    """What httpbin saw of `kubectl exec <target> -c sleep -- curl .../headers`; None when
    the exec or curl failed (the pods may not be up yet)."""
    done = cluster.kubectl.run(
        "exec",
        target,
        "-c",
        "sleep",
        "--",
        "curl",
        "-sS",
        "http://httpbin:8000/headers",
        check=False,
    )
    if done.returncode != 0:
        return None
    headers = json.loads(done.stdout)["headers"]
    # go-httpbin answers each header as a list of values.
    return {k: v[0] if isinstance(v, list) else v for k, v in headers.items()}


def test_curl_from_the_sleep_pod_goes_through_its_sidecar(cluster: Cluster):
    headers = poll(lambda: curl_headers(cluster), "curl from sleep to httpbin", POD_START)
    assert headers is not None
    print(f"httpbin saw: {headers}")
    # Only the sleep pod's Envoy, as curl's HTTP proxy, gives the request an id, and its
    # mutual TLS the sleep identity httpbin's sidecar forwards.
    assert headers.get("X-Request-Id"), headers
    assert "URI=spiffe://cluster.local/ns/default/sa/sleep" in headers["X-Forwarded-Client-Cert"]
    proxy = cluster.kubectl.run(
        "exec", "deploy/sleep", "-c", "sleep", "--", "printenv", "http_proxy"
    )
    (pod,) = cluster.ready("app=sleep")
    assert proxy.stdout.strip() == f"http://{pod['status']['podIP']}:15001"


def test_exit_codes_and_stdin(cluster: Cluster):
    done = cluster.kubectl.run(
        "exec", "deploy/sleep", "-c", "sleep", "--", "sh", "-c", "exit 3", check=False
    )
    assert done.returncode == 3, done.stderr
    echoed = cluster.kubectl.run(
        "exec", "-i", "deploy/sleep", "-c", "sleep", "--", "cat", input="hello\n"
    )
    assert echoed.stdout == "hello\n"
