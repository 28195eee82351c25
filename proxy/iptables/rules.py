"""The nat rules `istio-iptables` installs in a pod's network namespace (REDIRECT mode).

Istio's capture, in the order its init container writes it: outbound TCP from the app goes to
Envoy's virtualOutbound listener (15001), inbound TCP to virtualInbound (15006); the proxy's
own traffic (its uid/gid) and loopback traffic from the app are left alone, except the
proxy calling its own pod's address, which goes through inbound as a request from outside
would. Pure functions: `nat_rules(config)` is the rules, `restore_input` what
`iptables-restore --noflush` reads. TPROXY (mangle table, policy routing) is not built.
"""

from __future__ import annotations

import dataclasses
import ipaddress

INBOUND, IN_REDIRECT = "ISTIO_INBOUND", "ISTIO_IN_REDIRECT"
OUTPUT, REDIRECT = "ISTIO_OUTPUT", "ISTIO_REDIRECT"
CHAINS = (INBOUND, REDIRECT, IN_REDIRECT, OUTPUT)
# The inbound-passthrough source Envoy binds when it forwards to the app (Istio's 127.0.0.6).
INBOUND_PASSTHROUGH = "127.0.0.6/32"
TUNNEL_PORT = 15008  # HBONE: never captured


class CaptureError(ValueError):
    """Flags that cannot make rules: which flag, and why."""


@dataclasses.dataclass(frozen=True)
class CaptureConfig:
    proxy_port: int = 15001  # -p
    inbound_capture_port: int = 15006  # -z
    proxy_uids: tuple[int, ...] = (1337,)  # -u
    proxy_gids: tuple[int, ...] = (1337,)  # -g (default: the uids)
    inbound_mode: str = "REDIRECT"  # -m
    outbound_ip_ranges_include: tuple[str, ...] = ("*",)  # -i: "*" is every address
    outbound_ip_ranges_exclude: tuple[str, ...] = ()  # -x
    inbound_ports_include: tuple[str, ...] = ("*",)  # -b: "*" is every port
    inbound_ports_exclude: tuple[str, ...] = ()  # -d
    outbound_ports_include: tuple[str, ...] = ()  # -q
    outbound_ports_exclude: tuple[str, ...] = ()  # -o
    exclude_interfaces: tuple[str, ...] = ()  # -c


def nat_rules(config: CaptureConfig) -> list[str]:
    """The rules, as iptables-save writes them (`-A CHAIN ...`), chains first as `:CHAIN`."""
    if config.inbound_mode == "NONE":
        return []
    if config.inbound_mode != "REDIRECT":
        raise CaptureError(
            f"-m {config.inbound_mode}: only REDIRECT (or NONE) is supported; TPROXY needs the "
            "mangle table and policy routing, which this istio-iptables does not install"
        )
    rules = [f":{chain} - [0:0]" for chain in CHAINS]
    for interface in config.exclude_interfaces:
        rules += [f"-A PREROUTING -i {interface} -j RETURN", f"-A OUTPUT -o {interface} -j RETURN"]
    rules.append(f"-A {INBOUND} -p tcp -m tcp --dport {TUNNEL_PORT} -j RETURN")
    rules.append(f"-A {REDIRECT} -p tcp -j REDIRECT --to-ports {config.proxy_port}")
    rules.append(f"-A {IN_REDIRECT} -p tcp -j REDIRECT --to-ports {config.inbound_capture_port}")
    rules += _inbound(config)
    rules += _outbound(config)
    return rules


def _inbound(config: CaptureConfig) -> list[str]:
    include = config.inbound_ports_include
    if not include:
        return []
    rules = [f"-A PREROUTING -p tcp -j {INBOUND}"]
    if include == ("*",):
        for port in config.inbound_ports_exclude:
            rules.append(f"-A {INBOUND} -p tcp -m tcp --dport {port} -j RETURN")
        rules.append(f"-A {INBOUND} -p tcp -j {IN_REDIRECT}")
    else:
        for port in include:
            rules.append(f"-A {INBOUND} -p tcp -m tcp --dport {port} -j {IN_REDIRECT}")
    return rules


def _outbound(config: CaptureConfig) -> list[str]:
    rules = [f"-A OUTPUT -p tcp -j {OUTPUT}"]
    for port in config.outbound_ports_exclude:
        rules.append(f"-A {OUTPUT} -p tcp -m tcp --dport {port} -j RETURN")
    rules.append(f"-A {OUTPUT} -s {INBOUND_PASSTHROUGH} -o lo -j RETURN")
    for match in [f"--uid-owner {u}" for u in config.proxy_uids] + [
        f"--gid-owner {g}" for g in config.proxy_gids
    ]:
        # The proxy calling its own pod's address over lo: through inbound, as from outside.
        rules.append(
            f"-A {OUTPUT} ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport {TUNNEL_PORT} "
            f"-m owner {match} -j {IN_REDIRECT}"
        )
        # The app talking to itself over lo: not the mesh's business.
        rules.append(
            f"-A {OUTPUT} -o lo -p tcp -m tcp ! --dport {TUNNEL_PORT} -m owner ! {match} -j RETURN"
        )
        rules.append(f"-A {OUTPUT} -m owner {match} -j RETURN")
    rules.append(f"-A {OUTPUT} -d 127.0.0.1/32 -j RETURN")
    for port in config.outbound_ports_include:
        rules.append(f"-A {OUTPUT} -p tcp -m tcp --dport {port} -j {REDIRECT}")
    for cidr in config.outbound_ip_ranges_exclude:
        rules.append(f"-A {OUTPUT} -d {cidr} -j RETURN")
    if config.outbound_ip_ranges_include == ("*",):
        rules.append(f"-A {OUTPUT} -j {REDIRECT}")
    else:
        for cidr in config.outbound_ip_ranges_include:
            rules.append(f"-A {OUTPUT} -d {cidr} -j {REDIRECT}")
    return rules


def restore_input(rules: list[str]) -> str:
    """The nat table for `iptables-restore --noflush`: new chains declared, rules appended."""
    return "*nat\n" + "".join(f"{rule}\n" for rule in rules) + "COMMIT\n"


def parse_ports(flag: str, text: str, *, wildcard: bool = False) -> tuple[str, ...]:
    """A comma-separated port list; `*` alone when `wildcard` (every port). A port listed
    twice (an annotation repeating a default, `9000,09000`) is one port, so one rule."""
    items = tuple(p.strip() for p in text.split(",") if p.strip())
    if wildcard and items == ("*",):
        return items
    for item in items:
        if not item.isdigit() or not 0 < int(item) < 65536:
            raise CaptureError(f"{flag}: {item!r} is not a port (1-65535)")
    return tuple(dict.fromkeys(str(int(p)) for p in items))


def parse_cidrs(flag: str, text: str, *, wildcard: bool = False) -> tuple[str, ...]:
    """A comma-separated IPv4 CIDR list (`*` alone when `wildcard`); IPv6 is refused."""
    items = tuple(c.strip() for c in text.split(",") if c.strip())
    if wildcard and items == ("*",):
        return items
    out = []
    for item in items:
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise CaptureError(f"{flag}: {item!r} is not a CIDR (e.g. 10.0.0.0/8)") from None
        if network.version != 4:
            raise CaptureError(f"{flag}: {item}: IPv6 capture (ip6tables) is not supported")
        out.append(str(network))
    return tuple(out)
