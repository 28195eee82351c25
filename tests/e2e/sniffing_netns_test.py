"""Protocol sniffing on ports that name no protocol, end to end, pods captured.

The kube platform with every pod in its own network namespace and istio-init's rules. Two
Services on port 7070 whose ports name no protocol (`web`, `echo`, no appProtocol: Istio's
"auto"): `web` in front of httpbin (HTTP on 8080), `echo` in front of tcp-echo (raw TCP on
9000), and fortio's pod as the client, calling as its app would (its user, no proxy
variables). Neither the caller nor the apps say what they speak; the sidecars find out per
connection with Envoy's HTTP inspector:

- HTTP to `web:7070` takes the outbound HTTP chain, so web's VirtualService applies (an abort
  fault on a header, Envoy answering 418); over mTLS it offers `istio-http/1.1`, so the
  server's sidecar takes its inbound HTTP chain too (its connection manager's counters, and
  an HTTP-only AuthorizationPolicy that denies one path and nothing else);
- raw TCP to `echo:7070` takes the TCP chain and reaches tcp-echo unchanged.

Names start with `cd<MESH_TEST_NET>-63-`, pods are in 10.<100+MESH_TEST_NET>.63.0/24. Needs
root, `ip`, iptables and setpriv.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pkg.testing.wait import poll
from tests.e2e.kube_platform_test import POD_START, Cluster
from tests.e2e.meshtest import NEEDS_NETNS, ROOT, MeshUnderTest, captured_pods, loopback_subnet
from tools.local import netnssandbox
from tools.local.podnetwork import NodeNetwork

NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = loopback_subnet(63)
NETWORK = NodeNetwork(prefix=f"cd{NET}-63-", cidr=f"10.{100 + NET}.63.0/24")
FORTIO = ROOT / "samples/httpbin/sample-client/fortio-deploy.yaml"
APP_USER = "1000"  # as the kubelet runs an image USER 1000 (its group stays 0)

pytestmark = NEEDS_NETNS

APPS = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: web, port: 7070, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec:
      containers:
      - name: httpbin
        image: docker.io/mccutchen/go-httpbin:v2.15.0
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: echo, port: 7070, targetPort: 9000}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo, version: v1}}
    spec:
      containers:
      - name: tcp-echo
        image: registry.istio.io/release/tcp-echo-server:1.3
        args: ["9000", "one"]
        ports: [{containerPort: 9000}]
"""
ABORT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - match: [{headers: {x-fault: {exact: "teapot"}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: web}}]
  - route: [{destination: {host: web}}]
"""
DENY_STATUS = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-deny-status}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/status/*"]}}]}]
"""

# N plain HTTP GETs, no proxy settings: [status, server header] each.
_HTTP = """
import json, sys, urllib.error, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
headers = dict(h.split(":", 1) for h in sys.argv[3:])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
out = []
for _ in range(count):
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as r:
            out.append([r.status, r.headers.get("server", "")])
    except urllib.error.HTTPError as error:
        out.append([error.code, error.headers.get("server", "")])
    except OSError as error:
        out.append([type(error).__name__, ""])
print(json.dumps(out))
"""
# One connection per line sent: what answered first (its prefix), or how it ended.
_TCP = """
import collections, json, socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen = collections.Counter()
for _ in range(count):
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(b"hello\\n")
            line = conn.makefile("rb").readline().decode()
            seen[line.strip() if line else "closed"] += 1
    except OSError as error:
        seen[type(error).__name__] += 1
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run_dir = tmp_path_factory.mktemp("sniffing-mesh")
    mesh = MeshUnderTest(run_dir, SUBNET, platform="kube", bookinfo=False, **captured_pods(NETWORK))
    with mesh:
        cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
        try:
            cluster.run("label", "namespace", "default", "istio-injection=enabled")
            apps = run_dir / "apps.yaml"
            apps.write_text(APPS)
            cluster.run("apply", "-f", str(apps), "-f", str(FORTIO))
            for selector in ("app=web", "app=echo", "app=fortio"):
                poll(functools.partial(cluster.ready, selector), f"{selector} ready", POD_START)
            yield cluster
        finally:
            for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                if log.parent.parent.name.startswith(("default_web", "default_echo")):
                    print(f"--- {log.parent.parent.name}/{log.name} ---")
                    print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")
    assert netnssandbox.namespaces(NETWORK) == []


def in_client(cluster: Cluster, script: str, *args: str) -> Any:
    """A script run in fortio's pod as its app: its user, nothing in its environment
    (`env -i`), so only the pod's iptables can send its connections to the sidecar."""
    (client,) = cluster.ready("app=fortio")
    ns = NETWORK.netns(client["metadata"]["uid"])
    command = ["ip", "netns", "exec", ns, "env", "-i", "setpriv", f"--reuid={APP_USER}",
               "--clear-groups", "--", sys.executable, "-c", script, *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def statuses(cluster: Cluster, path: str, count: int, *headers: str) -> collections.Counter:
    answers = in_client(cluster, _HTTP, f"http://web:7070{path}", str(count), *headers)
    return collections.Counter((status, server) for status, server in answers)


def apply_text(cluster: Cluster, name: str, text: str) -> None:
    manifest = cluster.mesh.topology.run_dir / name
    manifest.write_text(text)
    cluster.run("apply", "-f", str(manifest))


# The pod's Envoy admin (its address, port 15000), from inside the pod: its counters.
_ADMIN_STATS = """
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
url = f"http://{sys.argv[1]}:15000/stats?filter={sys.argv[2]}"
print(opener.open(url, timeout=10).read().decode())
"""


def counter(cluster: Cluster, selector: str, name: str) -> int:
    """One counter of the selected pod's sidecar, as Envoy's admin names it."""
    (pod,) = cluster.ready(selector)
    ns = NETWORK.netns(pod["metadata"]["uid"])
    command = ["ip", "netns", "exec", ns, sys.executable, "-c", _ADMIN_STATS,
               pod["status"]["podIP"], "^" + re.escape(name) + "$"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return int(value)
    return 0


def test_http_to_an_unnamed_port_gets_its_virtual_service(cluster: Cluster):
    inbound_requests = "http.inbound_0.0.0.0_8080.downstream_rq_total"
    before = counter(cluster, "app=web", inbound_requests)
    try:
        apply_text(cluster, "abort.yaml", ABORT)
        poll(lambda: statuses(cluster, "/get", 3, "x-fault:teapot") == {(418, "envoy"): 3},
             "the abort fault on web:7070", 45)  # fmt: skip
        aborted = statuses(cluster, "/get", 20, "x-fault:teapot")
        passed = statuses(cluster, "/get", 20)
        print(f"web:7070 with x-fault: {dict(aborted)}, without: {dict(passed)}")
        assert aborted == {(418, "envoy"): 20}
        assert sum(n for (status, _), n in passed.items() if status == 200) == 20, passed
    finally:
        cluster.run("delete", "virtualservice", "web", check=False)
    # The server's sidecar took its inbound HTTP chain (the client offered istio-http/1.1),
    # not the TCP one: its connection manager counted the 20 that got through.
    served = counter(cluster, "app=web", inbound_requests) - before
    print(f"web's inbound HTTP connection manager counted {served:.0f} more requests")
    assert served >= 20


def test_raw_tcp_to_an_unnamed_port_passes_through(cluster: Cluster):
    seen = in_client(cluster, _TCP, "echo", "7070", "20")
    print(f"echo:7070, 20 raw connections: {seen}")
    assert seen == {"one hello": 20}
    # The server's sidecar passed them on through its inbound TCP chain.
    assert counter(cluster, "app=echo", "tcp.inbound|9000||.downstream_cx_total") >= 20


def test_an_http_only_policy_on_a_sniffed_port_denies_only_its_paths(cluster: Cluster):
    # On a TCP chain this DENY would ignore its paths and refuse every connection; on the
    # sniffed port's HTTP chain it refuses /status/* alone.
    try:
        apply_text(cluster, "deny-status.yaml", DENY_STATUS)
        poll(lambda: statuses(cluster, "/status/200", 3) == {(403, "envoy"): 3},
             "/status/200 denied", 45)  # fmt: skip
        denied = statuses(cluster, "/status/200", 10)
        allowed = statuses(cluster, "/get", 10)
        print(f"web:7070 /status/200: {dict(denied)}, /get: {dict(allowed)}")
        assert denied == {(403, "envoy"): 10}
        assert sum(n for (status, _), n in allowed.items() if status == 200) == 10, allowed
    finally:
        cluster.run("delete", "authorizationpolicy", "web-deny-status", check=False)
