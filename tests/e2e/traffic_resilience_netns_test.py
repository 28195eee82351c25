"""traffic_resilience_test.py's tests with every pod in its own network namespace.

The kubelet's netns runtime puts each pod (httpbin, httpbin-v2, fortio) in a namespace on the
node's bridge, the control plane on the bridge's address, with Istio's capture on, as `make
bookinfo` has it where the machine allows: fortio has no proxy settings, its plain requests to
`http://httpbin:8000` are sent to its sidecar by istio-init's rules. The test reaches each
pod's app (through the pod's capture, into its sidecar's virtualInbound) and Envoy admin
through the bridge. Names start with `pn<MESH_TEST_NET>-51-`, pods are in
10.<100+MESH_TEST_NET>.51.0/24. Needs root, `ip`, iptables and setpriv.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e import traffic_resilience_test as resilience
from tests.e2e.httpbintest import HttpbinMesh
from tests.e2e.meshtest import (
    NEEDS_NETNS,
    MeshUnderTest,
    captured_pods,
    loopback_subnet,
    reachable_run_dir,
)
from tools.local import netnssandbox
from tools.local.podnetwork import NodeNetwork

NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = loopback_subnet(51)
NETWORK = NodeNetwork(prefix=f"pn{NET}-51-", cidr=f"10.{100 + NET}.51.0/24")

pytestmark = NEEDS_NETNS

# The same checks, against this module's mesh.
healthy = resilience.healthy
test_without_a_rule_requests_spread_over_both_httpbins = (
    resilience.test_without_a_rule_requests_spread_over_both_httpbins
)
test_circuit_breaker_answers_overflow_with_503_uo = (
    resilience.test_circuit_breaker_answers_overflow_with_503_uo
)
test_an_endpoint_answering_5xx_is_ejected_and_comes_back = (
    resilience.test_an_endpoint_answering_5xx_is_ejected_and_comes_back
)
test_mirroring_sends_v2_a_copy_of_each_request_and_ignores_its_answer = (
    resilience.test_mirroring_sends_v2_a_copy_of_each_request_and_ignores_its_answer
)
test_retries_turn_a_flaky_endpoint_into_successes = (
    resilience.test_retries_turn_a_flaky_endpoint_into_successes
)
test_consistent_hash_keeps_each_user_on_one_pod = (
    resilience.test_consistent_hash_keeps_each_user_on_one_pod
)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpbinMesh]:
    with reachable_run_dir(f"cd{NET}-resilience-netns-mesh") as run_dir:
        options = dict(
            resilience.PLATFORM,
            **captured_pods(NETWORK),
        )
        with MeshUnderTest(run_dir, SUBNET, **options) as under_test:
            httpbin = HttpbinMesh(under_test, tmp_path_factory.mktemp("kubectl"))
            httpbin.deploy()
            yield httpbin
        leftovers = netnssandbox.namespaces(NETWORK) + netnssandbox.links(NETWORK)
        assert leftovers == []


def test_the_pods_are_in_their_own_namespaces(mesh: HttpbinMesh) -> None:
    addresses = [mesh.fortio_ip, *mesh.httpbin_ips.values()]
    assert all(ipaddress.IPv4Address(a) in NETWORK.network for a in addresses), addresses
    assert len(netnssandbox.namespaces(NETWORK)) == 3


def test_fortio_has_no_proxy_settings_and_its_pod_captures(mesh: HttpbinMesh) -> None:
    (pod,) = mesh.ready("app=fortio")
    ns = NETWORK.netns(pod["metadata"]["uid"])
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                          timeout=10).stdout.split()  # fmt: skip
    environs = [pathlib.Path(f"/proc/{p}/environ").read_bytes() for p in pids
                if b"fortio" in pathlib.Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
    assert environs, "fortio's process in its pod's namespace"
    assert all(b"http_proxy" not in e.lower() for e in environs)
    rules = subprocess.run(["ip", "netns", "exec", ns, "iptables", "-t", "nat", "-S"],
                           capture_output=True, text=True, timeout=10).stdout  # fmt: skip
    assert "-A ISTIO_OUTPUT" in rules
    assert "-A ISTIO_INBOUND" in rules
