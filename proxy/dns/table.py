"""The agent's lookup table: Pilot's NameTable turned into the answers the DNS proxy gives.

As Istio's agent (pkg/dns/client): every host is stored with a trailing dot, lower case. A
Kubernetes Service in the proxy's cluster domain also answers `name.ns.`, `name.ns.svc.` and,
in the proxy's own namespace, `name.`. Each host is also stored under itself plus the first
search domain of resolv.conf (`external.example.test.default.svc.cluster.local.`, what an app's
resolver asks first with `ndots:5`) as a CNAME to the host, so the resolver gets its answer at
the first try instead of walking the search list upstream. A host the table knows is
answered here, also when it has no address of the asked type (NOERROR, no answer: an
NXDOMAIN for AAAA would make a client drop the A it got); a name it does not know is not
ours, and goes upstream. Wildcard hosts (`*.example.test.`) answer every name under them.
Pure: built once per NameTable, then read only.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from api.networking.nds.v1 import nds_pb2

TTL = 30  # seconds, Istio's defaultTTLInSeconds
KUBERNETES = "Kubernetes"


@dataclasses.dataclass(frozen=True)
class LookupTable:
    hosts: frozenset[str]
    a: dict[str, tuple[str, ...]]
    aaaa: dict[str, tuple[str, ...]]
    cname: dict[str, str]  # an expanded search-path name -> the host it stands for

    @classmethod
    def build(
        cls,
        table: nds_pb2.NameTable,
        *,
        namespace: str,
        domain: str,
        search: Sequence[str] = (),
    ) -> LookupTable:
        """`domain` is the proxy's (`<ns>.svc.cluster.local` or `svc.cluster.local`)."""
        parts = domain.strip(".").split(".")
        if parts and parts[0] == namespace:
            parts = parts[1:]
        proxy_domain = ".".join(parts)
        hosts: set[str] = set()
        a: dict[str, tuple[str, ...]] = {}
        aaaa: dict[str, tuple[str, ...]] = {}
        cname: dict[str, str] = {}
        first_search = search[0].strip(".").lower() if search else ""
        for hostname, info in table.table.items():
            v4, v6 = _split(info.ips)
            if not v4 and not v6:
                continue  # malformed addresses: nothing to answer with
            names = _alternate_names(hostname, info, namespace, proxy_domain, parts)
            for name in names:
                hosts.add(name)
                if v4:
                    a[name] = v4
                if v6:
                    aaaa[name] = v6
                if first_search and not name.endswith(f".{first_search}."):
                    expanded = f"{name}{first_search}."
                    if expanded not in names:
                        cname[expanded] = name
                        hosts.add(expanded)
        return cls(frozenset(hosts), a, aaaa, cname)

    def lookup(self, qname: str, qtype: int) -> tuple[bool, list[dns.rrset.RRset]]:
        """(whether the name is ours, the answer records) for one question."""
        question = qname.lower() if qname.endswith(".") else qname.lower() + "."
        host, wildcard = question, False
        if host not in self.hosts:
            labels = host.rstrip(".").split(".")
            for index in range(1, len(labels)):
                candidate = "*." + ".".join(labels[index:]) + "."
                if candidate in self.hosts:
                    host, wildcard = candidate, True
                    break
            else:
                return False, []
        out: list[dns.rrset.RRset] = []
        owner = question
        target = self.cname.get(host)
        if target is not None:
            out.append(_rrset(question, dns.rdatatype.CNAME, [target]))
            host = owner = target
        if qtype == dns.rdatatype.A:
            addresses = self.a.get(host, ())
        elif qtype == dns.rdatatype.AAAA:
            addresses = self.aaaa.get(host, ())
        else:
            # Istio answers only A and AAAA from its table; anything else goes upstream.
            return False, []
        if not addresses:
            return True, []  # known, but none of this type: NOERROR with no answer
        out.append(_rrset(question if wildcard and target is None else owner, qtype, addresses))
        return True, out


def _split(ips: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    v4: list[str] = []
    v6: list[str] = []
    for text in ips:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        (v4 if address.version == 4 else v6).append(str(address))
    return tuple(v4), tuple(v6)


def _alternate_names(
    hostname: str,
    info: nds_pb2.NameTable.NameInfo,
    namespace: str,
    proxy_domain: str,
    parts: list[str],
) -> set[str]:
    host = hostname.lower()
    if info.registry != KUBERNETES:
        return {host if host.endswith(".") else host + "."}
    if host.endswith("."):
        return set()  # Istio skips a Kubernetes host written with its root dot
    names = {host + "."}
    # Short names only within the proxy's own cluster domain: `name.ns` in another domain
    # would be ambiguous.
    if not proxy_domain or not host.endswith(proxy_domain) or not info.shortname:
        return names
    short, ns = info.shortname.lower(), info.namespace.lower()
    names.add(f"{short}.{ns}.")
    if namespace == info.namespace:
        names.add(f"{short}.")
    names.add(f"{short}.{ns}.{parts[0]}.")
    return names


def _rrset(owner: str, rdtype: int, values: Sequence[str]) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(
        dns.name.from_text(owner),
        TTL,
        dns.rdataclass.IN,
        dns.rdatatype.RdataType(rdtype),
        list(values),
    )
