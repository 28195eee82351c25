"""The nat rules `istio-iptables` installs in a pod's network namespace (REDIRECT mode).

Istio's capture, in the order its init container writes it: outbound TCP from the app goes to
Envoy's virtualOutbound listener (15001), inbound TCP to virtualInbound (15006); the proxy's
own traffic (its uid/gid) and loopback traffic from the app are left alone, except the
proxy calling its own pod's address, which goes through inbound as a request from outside
would. With DNS capture (`--redirect-dns`, ISTIO_META_DNS_CAPTURE) the app's DNS, UDP and TCP
port 53 to the resolv.conf nameservers (or to any address with `--capture-all-dns`), goes to
the agent's DNS proxy on 15053; the proxy's own queries upstream are left alone by the same
uid/gid rules, and the raw table keeps the two legs of a UDP query in separate conntrack
zones, as Istio does. Pure functions: `nat_rules(config)` and `raw_rules(config)` are the
rules, `restore_input` what `iptables-restore --noflush` reads. TPROXY (mangle table, policy
routing) is not built.
"""

from __future__ import annotations

import dataclasses
import ipaddress

INBOUND, IN_REDIRECT = "ISTIO_INBOUND", "ISTIO_IN_REDIRECT"
OUTPUT, REDIRECT = "ISTIO_OUTPUT", "ISTIO_REDIRECT"
OUTPUT_DNS = "ISTIO_OUTPUT_DNS"
CHAINS = (INBOUND, REDIRECT, IN_REDIRECT, OUTPUT)
DNS_PORT = 53
AGENT_DNS_PORT = 15053  # the agent's DNS proxy (Istio's IstioAgentDNSListenerPort)
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
    redirect_dns: bool = False  # --redirect-dns (or ISTIO_META_DNS_CAPTURE=true)
    capture_all_dns: bool = False  # --capture-all-dns: port 53 to any address, not only these:
    dns_servers: tuple[str, ...] = ()  # the IPv4 nameservers of the pod's resolv.conf

    @property
    def captures_dns(self) -> bool:
        """Istio turns DNS capture off when it has neither servers nor capture-all."""
        return self.redirect_dns and (self.capture_all_dns or bool(self.dns_servers))


def nat_rules(config: CaptureConfig) -> list[str]:
    """The rules, as iptables-save writes them (`-A CHAIN ...`), chains first as `:CHAIN`."""
    if config.inbound_mode == "NONE":
        return []
    if config.inbound_mode != "REDIRECT":
        raise CaptureError(
            f"-m {config.inbound_mode}: only REDIRECT (or NONE) is supported; TPROXY needs the "
            "mangle table and policy routing, which this istio-iptables does not install"
        )
    chains = CHAINS + ((OUTPUT_DNS,) if config.captures_dns else ())
    rules = [f":{chain} - [0:0]" for chain in chains]
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
    dns = config.captures_dns
    # DNS over UDP must reach ISTIO_OUTPUT too; its other rules redirect TCP only.
    rules = [f"-A OUTPUT -j {OUTPUT}" if dns else f"-A OUTPUT -p tcp -j {OUTPUT}"]
    for port in config.outbound_ports_exclude:
        rules.append(f"-A {OUTPUT} -p tcp -m tcp --dport {port} -j RETURN")
    rules.append(f"-A {OUTPUT} -s {INBOUND_PASSTHROUGH} -o lo -j RETURN")
    uids = [f"--uid-owner {u}" for u in config.proxy_uids]
    for match in uids + [f"--gid-owner {g}" for g in config.proxy_gids]:
        # The proxy calling its own pod's address over lo: through inbound, as from outside.
        # With DNS capture Istio leaves the agent's TCP to port 53 out of it for the uids
        # (app -> agent -> resolver, not app -> agent -> inbound -> resolver), and not for the
        # gids; the same here, so the rules stay Istio's.
        skip = (
            f"-m multiport ! --dports {DNS_PORT},{TUNNEL_PORT}"
            if dns and match in uids
            else f"-m tcp ! --dport {TUNNEL_PORT}"
        )
        rules.append(
            f"-A {OUTPUT} ! -d 127.0.0.1/32 -o lo -p tcp {skip} -m owner {match} -j {IN_REDIRECT}"
        )
        # The app talking to itself over lo: not the mesh's business, except its TCP DNS to a
        # resolver on loopback, which the DNS chain below must still see.
        kept = DNS_PORT if dns else TUNNEL_PORT
        rules.append(
            f"-A {OUTPUT} -o lo -p tcp -m tcp ! --dport {kept} -m owner ! {match} -j RETURN"
        )
        rules.append(f"-A {OUTPUT} -m owner {match} -j RETURN")
    if dns:
        # After the proxy's own traffic has returned: only the app's queries get here.
        rules.append(f"-A {OUTPUT} -j {OUTPUT_DNS}")
        for proto in ("tcp", "udp"):
            for server in config.dns_servers if not config.capture_all_dns else ("",):
                to = f" -d {server}/32" if server else ""
                rules.append(
                    f"-A {OUTPUT_DNS} -p {proto} -m {proto} --dport {DNS_PORT}{to} "
                    f"-j REDIRECT --to-ports {AGENT_DNS_PORT}"
                )
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


def raw_rules(config: CaptureConfig) -> list[str]:
    """The raw table's conntrack zones for DNS over UDP (empty without DNS capture).

    The app's query to the resolver and the agent's query to the same resolver can share a
    5-tuple once NAT has rewritten one of them; in one zone the second is taken for the first's
    reply. Istio puts the agent's side (to port 53, from 15053) in zone 1 and the app's in 2."""
    if config.inbound_mode == "NONE" or not config.captures_dns:
        return []
    rules = [f":{OUTPUT_DNS} - [0:0]", f":{INBOUND} - [0:0]", f"-A OUTPUT -p udp -j {OUTPUT_DNS}"]
    owners = [f"--uid-owner {u}" for u in config.proxy_uids]
    owners += [f"--gid-owner {g}" for g in config.proxy_gids]
    for match in owners:
        rules.append(
            f"-A {OUTPUT_DNS} -p udp -m udp --dport {DNS_PORT} -m owner {match} -j CT --zone 1"
        )
        rules.append(
            f"-A {OUTPUT_DNS} -p udp -m udp --sport {AGENT_DNS_PORT} -m owner {match} -j CT --zone 2"
        )
    rules.append(f"-A PREROUTING -p udp -j {INBOUND}")
    for server in config.dns_servers if not config.capture_all_dns else ("",):
        to, source = (f" -d {server}/32", f" -s {server}/32") if server else ("", "")
        rules.append(f"-A {OUTPUT_DNS} -p udp -m udp --dport {DNS_PORT}{to} -j CT --zone 2")
        rules.append(f"-A {INBOUND} -p udp -m udp --sport {DNS_PORT}{source} -j CT --zone 1")
    return rules


def restore_input(rules: list[str], raw: list[str] | None = None) -> str:
    """The tables for `iptables-restore --noflush`: new chains declared, rules appended."""
    text = "*nat\n" + "".join(f"{rule}\n" for rule in rules) + "COMMIT\n"
    if raw:
        text = "*raw\n" + "".join(f"{rule}\n" for rule in raw) + "COMMIT\n" + text
    return text


def parse_resolv_nameservers(text: str) -> tuple[str, ...]:
    """The IPv4 `nameserver` addresses of a resolv.conf, in order (IPv6 ones are skipped:
    there is no ip6tables capture)."""
    servers = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                address = ipaddress.ip_address(fields[1])
            except ValueError:
                continue
            if address.version == 4 and str(address) not in servers:
                servers.append(str(address))
    return tuple(servers)


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
