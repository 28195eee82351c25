"""The node's DNS server for pods in network namespaces: what a pod's resolv.conf names.

A Kubernetes pod's resolv.conf names the cluster's DNS Service; the local platform's Service
names are in each pod's hosts file (podhosts.py), so this server knows no names of its own:
it listens on the bridge's address (the pods' gateway), port 53, UDP and TCP, and forwards
every question to the resolvers of this machine's /etc/resolv.conf, which a pod cannot reach
itself (the host does not route the pods' range out). It is the same forwarder as the
agent's DNS proxy (proxy/dns/server.py) with an empty name table. With DNS capture a
sidecar's agent answers the mesh's hosts and forwards the rest here; without it, the app's
resolver asks here directly.
"""

from __future__ import annotations

import logging
import pathlib

from api.networking.nds.v1 import nds_pb2
from proxy.dns.server import DnsOptions, LocalDnsServer, parse_resolv_conf

log = logging.getLogger("kubelet.dns")

HOST_RESOLV_CONF = pathlib.Path("/etc/resolv.conf")
DNS_PORT = 53


def node_dns(
    address: str, resolv_conf: pathlib.Path = HOST_RESOLV_CONF, port: int = DNS_PORT
) -> LocalDnsServer:
    """The server (not yet started) for the node's `address`, forwarding to the host's
    resolvers; raises OSError when the host's resolv.conf cannot be read."""
    upstreams, _ = parse_resolv_conf(resolv_conf.read_text())
    # The host's own loopback resolvers (a systemd-resolved stub) are reachable from here too:
    # this server runs in the host's namespace.
    server = LocalDnsServer(
        options=DnsOptions(namespace="", domain="", upstreams=upstreams, host=address, port=port)
    )
    server.update_table(nds_pb2.NameTable())  # no names of its own: ready, forwarding all
    return server
