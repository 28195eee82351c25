"""Istio's "JWT authentication" task again, with Bookinfo on the kube platform and every pod in
its own network namespace, captured by Istio's iptables: the gateway reaches productpage at
its pod's address and app port, which the pod's rules hand to virtualInbound, where the JWT
and RBAC filters are. Names start with `jw<MESH_TEST_NET>-68-`, pods are in
10.<100+MESH_TEST_NET>.68.0/24. Needs root, `ip`, iptables and setpriv.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e import jwt_test as jwt
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
SUBNET = loopback_subnet(68)
NETWORK = NodeNetwork(prefix=f"jw{NET}-68-", cidr=f"10.{100 + NET}.68.0/24")

pytestmark = NEEDS_NETNS


def test_productpage_is_captured_in_its_own_namespace(mesh: MeshUnderTest) -> None:
    namespaces = netnssandbox.namespaces(NETWORK)
    assert len(namespaces) >= 6, namespaces  # Bookinfo's six pods
    assert jwt._page(mesh)[0] == 200  # before any policy: the page through the capture


# The same checks and tokens, against this module's mesh.
issuer = jwt.issuer
tokens = jwt.tokens
test_request_authentication_alone_refuses_bad_tokens_and_lets_no_token_pass = (
    jwt.test_request_authentication_alone_refuses_bad_tokens_and_lets_no_token_pass
)
test_a_request_principal_is_required_by_authorization_policy = (
    jwt.test_a_request_principal_is_required_by_authorization_policy
)
test_a_claim_condition_lets_only_tokens_with_the_claim_through = (
    jwt.test_a_claim_condition_lets_only_tokens_with_the_claim_through
)
test_forward_original_token_lets_the_next_hop_check_it_again = (
    jwt.test_forward_original_token_lets_the_next_hop_check_it_again
)


@pytest.fixture(scope="module")
def mesh() -> Iterator[MeshUnderTest]:
    with reachable_run_dir(f"jw{NET}-jwt-netns-mesh") as run_dir:
        # A filter-chain change leaves the gateway's pooled connections to productpage on the
        # old chain until Envoy drains them, over ProxyConfig drainDuration (Istio's 45 s by
        # default, as the injected sidecars here take it): the task's checks wait for 10 s.
        options = dict(
            platform="kube",
            heal=False,
            mesh_config_extra="defaultConfig:\n  drainDuration: 2s\n",
            **captured_pods(NETWORK),
        )
        with MeshUnderTest(run_dir, SUBNET, **options) as under_test:
            yield under_test
        leftovers = netnssandbox.namespaces(NETWORK) + netnssandbox.links(NETWORK)
        assert leftovers == []
