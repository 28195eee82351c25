"""The pod network's plan: names within Linux's limits, addresses from the node's range, and
the `ip` commands a pod's sandbox is made and removed with."""

from __future__ import annotations

import pytest

from tools.local.podnetwork import (
    LINK_NAME_MAX,
    NodeNetwork,
    PodNetworkError,
    parse_link_names,
    parse_netns_list,
)

UID = "4f1c2d9e-77aa-4b1e-9c3d-0123456789ab"


def test_the_default_network_is_kubernetes_usual_node_range() -> None:
    network = NodeNetwork()
    assert (network.bridge, network.cidr, network.gateway) == (
        "mesh-br0",
        "10.244.0.0/24",
        "10.244.0.1",
    )
    assert network.pod_range() == ("10.244.0.2", "10.244.0.254")


def test_names_carry_the_prefix_and_fit_a_link_name() -> None:
    network = NodeNetwork(prefix="pn43-47-", cidr="10.143.47.0/24")
    assert network.netns(UID) == "pn43-47-4f1c2d9e77"
    assert network.host_link(UID) == "pn43-47-4f1c2d9"
    assert len(network.host_link(UID)) <= LINK_NAME_MAX
    assert len(network.bridge) <= LINK_NAME_MAX
    assert network.owns(network.netns(UID))
    assert not network.owns("mesh-4f1c2d9e77")
    assert str(network.etc_dir(UID)) == "/etc/netns/pn43-47-4f1c2d9e77"


def test_a_pods_sandbox_commands() -> None:
    network = NodeNetwork(prefix="pn43-", cidr="10.143.0.0/24")
    ns, link = "pn43-4f1c2d9e77", "pn43-4f1c2d9e77"
    assert network.pod_up(UID, "10.143.0.7") == [
        ("ip", "netns", "add", ns),
        ("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns),
        ("ip", "link", "set", link, "master", "pn43-br0", "up"),
        ("ip", "-n", ns, "link", "set", "lo", "up"),
        ("ip", "-n", ns, "addr", "add", "10.143.0.7/24", "dev", "eth0"),
        ("ip", "-n", ns, "link", "set", "eth0", "up"),
        ("ip", "-n", ns, "route", "add", "default", "via", "10.143.0.1"),
    ]
    assert network.pod_down(UID) == [("ip", "link", "delete", link), ("ip", "netns", "delete", ns)]
    assert network.node_up() == [
        ("ip", "link", "add", "pn43-br0", "type", "bridge"),
        ("ip", "addr", "add", "10.143.0.1/24", "dev", "pn43-br0"),
        ("ip", "link", "set", "pn43-br0", "up"),
    ]


def test_containers_run_in_the_namespace_as_their_user() -> None:
    network = NodeNetwork(prefix="pn43-", cidr="10.143.0.0/24")
    argv = ("python", "-m", "app")
    assert network.exec_in(UID, argv, None, None) == [
        "ip", "netns", "exec", "pn43-4f1c2d9e77", "python", "-m", "app",
    ]  # fmt: skip
    assert network.exec_in(UID, argv, 0, 1337) == [
        "ip", "netns", "exec", "pn43-4f1c2d9e77",
        "setpriv", "--reuid=0", "--regid=1337", "--clear-groups", "--", "python", "-m", "app",
    ]  # fmt: skip
    assert network.exec_in(UID, argv, 1000, None)[4:7] == [
        "setpriv",
        "--reuid=1000",
        "--clear-groups",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix": "Mesh-"}, "lowercase letters"),
        ({"prefix": "averylongprefix-"}, "at most 9"),
        ({"prefix": "mesh"}, "ending in '-'"),
        ({"cidr": "10.244.0.1/24"}, "host bits set"),
        ({"cidr": "10.244.0.0/30"}, "too small"),
        ({"cidr": "banana"}, "banana"),
    ],
)
def test_a_bad_network_is_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(PodNetworkError, match=message):
        NodeNetwork(**options)


def test_an_address_outside_the_range_or_the_gateway_is_refused() -> None:
    network = NodeNetwork()
    for address in ("10.245.0.7", "10.244.0.1"):
        with pytest.raises(PodNetworkError, match=r"not a pod address of 10\.244\.0\.0/24"):
            network.pod_up(UID, address)


def test_what_ip_prints_is_read_back() -> None:
    assert parse_netns_list("pn43-abc (id: 3)\nmesh-def\n\n") == ["pn43-abc", "mesh-def"]
    links = (
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue\n"
        "7: pn43-br0: <BROADCAST,MULTICAST,UP> mtu 1500\n"
        "9: pn43-4f1c2d9@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master pn43-br0\n"
    )
    assert parse_link_names(links) == ["lo", "pn43-br0", "pn43-4f1c2d9"]
