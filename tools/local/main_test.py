"""`make bookinfo`'s choice of pod network: namespaces where the machine allows them, else
loopback addresses, said in one line; what cannot work is refused."""

from __future__ import annotations

import pytest

from tools.local.main import choose_pod_network

NOT_ROOT = "not root (network namespaces and iptables need NET_ADMIN)"


def choose(wanted: str = "auto", **options: object) -> tuple[str, str, str]:
    settings: dict[str, object] = {
        "platform": "kube",
        "control_address": None,
        "pod_cidr": "10.244.0.0/24",
        "interception": False,
        "unavailable": "",
    }
    settings.update(options)
    return choose_pod_network(wanted, **settings)  # type: ignore[arg-type]


def test_with_root_pods_get_namespaces_and_the_control_plane_the_bridge() -> None:
    assert choose() == ("netns", "10.244.0.1", "")
    assert choose(pod_cidr="10.10.3.0/24") == ("netns", "10.10.3.1", "")
    assert choose(interception=True)[0] == "netns"


def test_without_root_loopback_and_one_line_saying_why() -> None:
    network, control, notice = choose(unavailable=NOT_ROOT)
    assert (network, control) == ("loopback", "127.0.0.1")
    assert notice == (
        "pods on loopback addresses, no network namespaces or traffic interception: " + NOT_ROOT
    )


def test_a_control_address_off_the_bridge_keeps_loopback() -> None:
    network, control, notice = choose(control_address="127.0.0.1")
    assert (network, control) == ("loopback", "127.0.0.1")
    assert "not the bridge's 10.244.0.1" in notice
    assert choose("loopback") == ("loopback", "127.0.0.1", "")
    assert choose(platform="local") == ("loopback", "127.0.0.1", "")


@pytest.mark.parametrize(
    ("wanted", "options", "message"),
    [
        ("netns", {"unavailable": NOT_ROOT}, "--pod-network netns: not root"),
        ("auto", {"unavailable": NOT_ROOT, "interception": True}, "--interception needs"),
        ("loopback", {"interception": True}, "--interception needs"),
        ("auto", {"pod_cidr": "10.244.0.1/24"}, "host bits set"),
    ],
)
def test_what_cannot_work_is_refused(wanted, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        choose(wanted, **options)
