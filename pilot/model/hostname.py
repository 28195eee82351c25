"""Hostnames: Kubernetes-style short names, wildcard matching and Istio's sort order."""

from __future__ import annotations

from collections.abc import Iterable

from pilot.model.service import DOMAIN_SUFFIX


def resolve_short_name(host: str, namespace: str, domain_suffix: str = DOMAIN_SUFFIX) -> str:
    """Expand a name as Istio does: `reviews` in `default` is `reviews.default.svc.cluster.local`.

    Names with a dot are taken as written (`reviews.default` is NOT expanded: Istio only
    expands dotless names), and so are wildcards.
    """
    if host == "*" or host.startswith("*") or "." in host:
        return host
    return f"{host}.{namespace}.svc.{domain_suffix}"


def matches(a: str, b: str) -> bool:
    """Whether two hostnames, either possibly wildcarded (`*.foo.com`), name a common host."""
    if not a.startswith("*") and not b.startswith("*"):
        return a == b
    if a == "*" or b == "*":
        return True
    sa, sb = a.lstrip("*"), b.lstrip("*")
    if a.startswith("*") and b.startswith("*"):
        return sa.endswith(sb) or sb.endswith(sa)
    wildcard, plain = (sa, b) if a.startswith("*") else (sb, a)
    return plain.endswith(wildcard) and plain != wildcard.lstrip(".")


def sort_key(host: str) -> tuple[bool, int, str]:
    """Non-wildcards first, then longer before shorter, then alphabetical."""
    return (host.startswith("*"), -len(host), host)


def sorted_hosts(hosts: Iterable[str]) -> list[str]:
    return sorted(set(hosts), key=sort_key)


def aliases(hostname: str, port: int, *, include_bare: bool, proxy_domain: str) -> list[str]:
    """Every Host header a caller inside the mesh may send for a service, as Istio names them.

    Besides the hostname itself, the names a caller in the proxy's DNS domain can use
    (Istio's generateAltVirtualHosts): the part of the hostname the two do not share, and
    that part with each shorter piece of the shared suffix. For
    `reviews.default.svc.cluster.local` from a proxy in `default.svc.cluster.local`: `reviews`,
    `reviews.default`, `reviews.default.svc`, `reviews.default.svc.cluster`; from
    `other.svc.cluster.local`: `reviews.default` and longer, never `reviews`; for
    `reviews.service.consul` from `service.consul`: `reviews`, `reviews.service`. A hostname
    sharing nothing with the domain (`api.example.com`) has only itself. Each comes with
    `:port`, and also without it when the service can be reached on the HTTP default port
    (or has a single HTTP port).
    """
    names = [hostname]
    unique, shared = _unique_and_shared(hostname, proxy_domain)
    if shared:
        pieces = shared.split(".")
        names += [".".join([unique, *pieces[:n]]) for n in range(len(pieces) - 1, 0, -1)]
        names.append(unique)
    domains = [f"{n}:{port}" for n in names]
    if include_bare:
        domains = names + domains
    return domains


def _unique_and_shared(hostname: str, proxy_domain: str) -> tuple[str, str]:
    """`foo.ns1.svc.cluster.local` and `ns2.svc.cluster.local` -> `foo.ns1`, `svc.cluster.local`."""
    host_parts, domain_parts = hostname.split("."), proxy_domain.split(".") if proxy_domain else []
    shared = 0
    while (
        shared < min(len(host_parts) - 1, len(domain_parts))
        and host_parts[-1 - shared] == domain_parts[-1 - shared]
    ):
        shared += 1
    if not shared:
        return hostname, ""
    return ".".join(host_parts[:-shared]), ".".join(host_parts[-shared:])
