"""The node's pod network: its plan, as pure data (names, addresses and the `ip` commands).

What a bridge CNI plugin gives a Kubernetes node (`cni0`): a bridge in the host's network
namespace holding the first address of the node's pod range (the pods' default gateway, and
where the control plane listens for them), and for each pod its own network namespace with
one end of a veth pair as `eth0` (an address from the range, `lo` up, a default route via the
bridge) and the other end on the bridge. Why the host's namespace: the gateway, the
browser, Prometheus and the kubelet's probes all run there, and reach every pod through the
bridge's connected route, with no second hop or route to add (tools/local/ARCHITECTURE.md).

Every name starts with the network's prefix (`mesh-` for `make bookinfo`; tests take their
own), so whatever a crash leaves behind is found and removed by name. Linux allows 15
characters in a link name: the prefix leaves the rest to the pod's uid.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib
import re

DEFAULT_PREFIX = "mesh-"
# Kubernetes' usual cluster pod CIDR is 10.244.0.0/16 (flannel's, kind's); the node gets the
# first /24 of it, as a node's podCIDR.
DEFAULT_POD_CIDR = "10.244.0.0/24"
LINK_NAME_MAX = 15  # IFNAMSIZ - 1
POD_INTERFACE = "eth0"
NETNS_ETC = pathlib.Path("/etc/netns")  # `ip netns exec` bind-mounts <ns>/* over /etc/*
_PREFIX = re.compile(r"^[a-z][a-z0-9]*-([a-z0-9]+-)?$")

Command = tuple[str, ...]


class PodNetworkError(ValueError):
    """A plan that cannot be made: which value, and why."""


@dataclasses.dataclass(frozen=True)
class NodeNetwork:
    prefix: str = DEFAULT_PREFIX
    cidr: str = DEFAULT_POD_CIDR

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix) or len(self.prefix) > 9:
            raise PodNetworkError(
                f"pod network prefix {self.prefix!r}: want lowercase letters and digits ending "
                "in '-' (at most 9 characters, so a link name keeps 6 for the pod)"
            )
        try:
            network = ipaddress.IPv4Network(self.cidr, strict=True)
        except ValueError as error:
            raise PodNetworkError(f"pod network {self.cidr!r}: {error}") from None
        if network.prefixlen > 29:
            raise PodNetworkError(f"pod network {self.cidr!r}: too small for pods (at most /29)")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    @property
    def gateway(self) -> str:
        """The bridge's address: the pods' default route, and the node's address for them."""
        return str(self.network.network_address + 1)

    def pod_range(self) -> tuple[str, str]:
        """The addresses pods get: after the gateway, to the last before broadcast."""
        network = self.network
        return str(network.network_address + 2), str(network.broadcast_address - 1)

    def netns(self, uid: str) -> str:
        return f"{self.prefix}{_token(uid)}"

    def host_link(self, uid: str) -> str:
        """The veth end on the bridge (the pod's own end is eth0, in its namespace)."""
        return f"{self.prefix}{_token(uid)}"[:LINK_NAME_MAX]

    def owns(self, name: str) -> bool:
        return name.startswith(self.prefix)

    def etc_dir(self, uid: str) -> pathlib.Path:
        return NETNS_ETC / self.netns(uid)

    # The commands, in order.

    def node_up(self) -> list[Command]:
        length = self.network.prefixlen
        return [
            ("ip", "link", "add", self.bridge, "type", "bridge"),
            ("ip", "addr", "add", f"{self.gateway}/{length}", "dev", self.bridge),
            ("ip", "link", "set", self.bridge, "up"),
        ]

    def node_down(self) -> list[Command]:
        return [("ip", "link", "delete", self.bridge)]

    def pod_up(self, uid: str, ip: str) -> list[Command]:
        address = ipaddress.IPv4Address(ip)
        if address not in self.network or str(address) in (self.gateway,):
            raise PodNetworkError(f"pod address {ip} is not a pod address of {self.cidr}")
        ns, link = self.netns(uid), self.host_link(uid)
        length = self.network.prefixlen
        return [
            ("ip", "netns", "add", ns),
            ("ip", "link", "add", link, "type", "veth", "peer", "name", POD_INTERFACE, "netns", ns),
            ("ip", "link", "set", link, "master", self.bridge, "up"),
            ("ip", "-n", ns, "link", "set", "lo", "up"),
            ("ip", "-n", ns, "addr", "add", f"{ip}/{length}", "dev", POD_INTERFACE),
            ("ip", "-n", ns, "link", "set", POD_INTERFACE, "up"),
            ("ip", "-n", ns, "route", "add", "default", "via", self.gateway),
        ]

    def pod_down(self, uid: str) -> list[Command]:
        # The veth pair goes with the namespace; deleting the host end first frees its name
        # at once even if a process keeps the namespace alive a moment longer.
        return [
            ("ip", "link", "delete", self.host_link(uid)),
            ("ip", "netns", "delete", self.netns(uid)),
        ]

    def exec_in(
        self, uid: str, argv: tuple[str, ...], user: int | None, group: int | None
    ) -> list[str]:
        """A container's command line: in the pod's namespace (and its /etc/netns files),
        as its user and group (with no supplementary groups) when it has them."""
        head = ["ip", "netns", "exec", self.netns(uid)]
        if user is None and group is None:
            return [*head, *argv]
        ids = []
        if user is not None:
            ids.append(f"--reuid={user}")
        if group is not None:
            ids.append(f"--regid={group}")
        return [*head, "setpriv", *ids, "--clear-groups", "--", *argv]


def _token(uid: str) -> str:
    token = re.sub(r"[^a-z0-9]", "", uid.lower())
    if len(token) < 6:
        raise PodNetworkError(f"pod uid {uid!r}: too short to name its network")
    return token[:10]


def parse_netns_list(text: str) -> list[str]:
    """The names `ip netns list` prints (each line `name` or `name (id: N)`)."""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def parse_link_names(text: str) -> list[str]:
    """The link names `ip -o link show` prints (`N: name@peer: <...>`)."""
    names = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names
