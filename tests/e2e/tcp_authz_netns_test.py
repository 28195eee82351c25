"""Istio's "Authorization for TCP traffic" task on the local platform, pods captured.

The kube platform with every pod in its own network namespace and istio-init's rules:
Istio's tcp-echo sample (ports 9000 and 9001 in its Service, 9002 served but not declared)
and fortio's pod as the client. From the client pod, as its app would (its user, no proxy
variables), plain TCP connections to `tcp-echo:9000`, `tcp-echo:9001` and, as the task does,
the tcp-echo pod's own address on 9002 (the passthrough chain). The server's sidecar decides
with Envoy's network RBAC filter, which Pilot builds from the task's AuthorizationPolicies:

- ALLOW on port 9000: 9000 answers, 9001 and 9002 are refused;
- ALLOW with `methods: [GET]` on 9000: nothing is allowed (a TCP connection has no method,
  so Istio leaves the rule out);
- DENY with `methods: [GET]` on 9000: all of 9000 is denied (Istio ignores the HTTP-only
  field, so the rule denies more), 9001 and 9002 answer.

Names start with `cd<MESH_TEST_NET>-62-`, pods are in 10.<100+MESH_TEST_NET>.62.0/24. Needs
root, `ip`, iptables and setpriv.
"""

from __future__ import annotations

import collections
import functools
import os
from collections.abc import Iterator

import pytest

from pkg.testing.wait import poll
from tests.e2e.kube_platform_test import POD_START, Cluster
from tests.e2e.meshtest import NEEDS_NETNS, ROOT, MeshUnderTest, captured_pods, loopback_subnet
from tests.e2e.podclient import tcp_from_pod
from tools.local import netnssandbox
from tools.local.podnetwork import NodeNetwork

NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = loopback_subnet(62)
NETWORK = NodeNetwork(prefix=f"cd{NET}-62-", cidr=f"10.{100 + NET}.62.0/24")
TCP_ECHO = ROOT / "samples/tcp-echo"
FORTIO = ROOT / "samples/httpbin/sample-client/fortio-deploy.yaml"
APP_USER = "1000"  # as the kubelet runs an image USER 1000 (its group stays 0)
ANSWERS = {"one", "two"}  # what tcp-echo v1 and v2 answer; anything else is a refusal

pytestmark = NEEDS_NETNS


ALLOW_9000 = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: default}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: ALLOW
  rules: [{to: [{operation: {ports: ["9000"]}}]}]
"""
ALLOW_GET_9000 = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: default}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: ALLOW
  rules: [{to: [{operation: {methods: ["GET"], ports: ["9000"]}}]}]
"""
DENY_GET_9000 = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: tcp-policy, namespace: default}
spec:
  selector: {matchLabels: {app: tcp-echo}}
  action: DENY
  rules: [{to: [{operation: {methods: ["GET"], ports: ["9000"]}}]}]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run_dir = tmp_path_factory.mktemp("tcp-authz-mesh")
    mesh = MeshUnderTest(run_dir, SUBNET, platform="kube", bookinfo=False, **captured_pods(NETWORK))
    with mesh:
        cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
        try:
            cluster.run("label", "namespace", "default", "istio-injection=enabled")
            cluster.run("apply", "-f", str(TCP_ECHO / "tcp-echo.yaml"), "-f", str(FORTIO))
            for selector in ("app=tcp-echo,version=v1", "app=tcp-echo,version=v2", "app=fortio"):
                poll(functools.partial(cluster.ready, selector), f"{selector} ready", POD_START)
            yield cluster
        finally:
            cluster.run("delete", "authorizationpolicy", "tcp-policy", check=False)
            for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                if log.parent.parent.name.startswith("default_tcp-echo"):
                    print(f"--- {log.parent.parent.name}/{log.name} ---")
                    print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")
    assert netnssandbox.namespaces(NETWORK) == []


def connect(cluster: Cluster, host: str, port: int, count: int = 10) -> collections.Counter[str]:
    """`count` connections from fortio's pod, as its app: its user, nothing in its
    environment (`env -i`), so only the pod's iptables can send them to the sidecar."""
    (client,) = cluster.ready("app=fortio")
    return tcp_from_pod(NETWORK.netns(client["metadata"]["uid"]), APP_USER, host, port, count)


def pod_ip(cluster: Cluster) -> str:
    """The task's TCP_ECHO_IP: a tcp-echo pod's address, for the port no Service declares."""
    (pod,) = cluster.ready("app=tcp-echo,version=v1")
    return pod["status"]["podIP"]


def answered(seen: collections.Counter[str]) -> int:
    return sum(n for key, n in seen.items() if key in ANSWERS)


def three_ports(cluster: Cluster, count: int = 10) -> dict[int, collections.Counter[str]]:
    return {
        9000: connect(cluster, "tcp-echo", 9000, count),
        9001: connect(cluster, "tcp-echo", 9001, count),
        9002: connect(cluster, pod_ip(cluster), 9002, count),
    }


def apply_policy(cluster: Cluster, name: str, text: str) -> None:
    manifest = cluster.mesh.topology.run_dir / name
    manifest.write_text(text)
    cluster.run("apply", "-f", str(manifest))


def until(
    cluster: Cluster, wanted: dict[int, bool], what: str
) -> dict[int, collections.Counter[str]]:
    """Poll (bounded) until each port answers every connection (True) or none (False)."""
    seen: dict[int, collections.Counter[str]] = {}

    def check() -> bool:
        seen.update(three_ports(cluster, 5))
        return all(
            (answered(seen[p]) == 5) if ok else (answered(seen[p]) == 0) for p, ok in wanted.items()
        )

    poll(check, what, 45)
    return seen


def test_without_a_policy_every_port_answers(cluster: Cluster):
    seen = three_ports(cluster)
    for port, counts in seen.items():
        assert answered(counts) == 10, (port, counts)
    assert set(seen[9000]) == ANSWERS  # the Service's two pods, round robin
    assert set(seen[9002]) == {"one"}  # the v1 pod's own address


def test_allow_on_port_9000_lets_9000_in_and_refuses_9001_and_9002(cluster: Cluster):
    try:
        apply_policy(cluster, "allow-9000.yaml", ALLOW_9000)
        until(cluster, {9000: True, 9001: False, 9002: False}, "only 9000 allowed")
        # Steady, over more connections.
        seen = three_ports(cluster, 30)
        print(f"ALLOW 9000, 30 connections per port: { ({p: dict(c) for p, c in seen.items()}) }")
        assert answered(seen[9000]) == 30, seen[9000]
        assert answered(seen[9001]) == 0, seen[9001]
        assert answered(seen[9002]) == 0, seen[9002]
    finally:
        cluster.run("delete", "authorizationpolicy", "tcp-policy", check=False)
    until(cluster, {9000: True, 9001: True, 9002: True}, "every port open again")


def test_allow_with_an_http_only_field_allows_nothing_on_tcp(cluster: Cluster):
    try:
        apply_policy(cluster, "allow-get.yaml", ALLOW_GET_9000)
        seen = until(cluster, {9000: False, 9001: False, 9002: False}, "nothing allowed")
        print(f"ALLOW methods GET on 9000: { ({p: dict(c) for p, c in seen.items()}) }")
    finally:
        cluster.run("delete", "authorizationpolicy", "tcp-policy", check=False)
    until(cluster, {9000: True, 9001: True, 9002: True}, "every port open again")


def test_deny_with_an_http_only_field_denies_all_of_port_9000(cluster: Cluster):
    try:
        apply_policy(cluster, "deny-get.yaml", DENY_GET_9000)
        until(cluster, {9000: False, 9001: True, 9002: True}, "9000 denied, the rest open")
        seen = three_ports(cluster, 30)
        print(f"DENY methods GET on 9000, 30 connections per port: "
              f"{({p: dict(c) for p, c in seen.items()})}")  # fmt: skip
        assert answered(seen[9000]) == 0, seen[9000]
        assert answered(seen[9001]) == 30, seen[9001]
        assert answered(seen[9002]) == 30, seen[9002]
    finally:
        cluster.run("delete", "authorizationpolicy", "tcp-policy", check=False)
