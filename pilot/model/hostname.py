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


def aliases(hostname: str, port: int, *, include_bare: bool) -> list[str]:
    """Every Host header a caller inside the mesh may send for a Kubernetes-style service.

    For `reviews.default.svc.cluster.local` on 9080: the FQDN, `reviews.default.svc`,
    `reviews.default` and `reviews`, each with `:9080`, and without the port when the
    service can be reached on the HTTP default port (or has a single HTTP port).
    Other hostnames (ServiceEntry hosts such as `api.example.com`) have only themselves.
    """
    names = [hostname]
    parts = hostname.split(".")
    if len(parts) >= 4 and parts[2] == "svc":
        name, namespace = parts[0], parts[1]
        names += [f"{name}.{namespace}.svc", f"{name}.{namespace}", name]
    domains = [f"{n}:{port}" for n in names]
    if include_bare:
        domains = names + domains
    return domains
