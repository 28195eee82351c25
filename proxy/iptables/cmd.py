"""`pilot-agent istio-iptables`: the istio-init container's program (Istio's flags).

    pilot-agent istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021

Builds the nat rules (and with DNS capture the raw table's, rules.py) and hands them to
`iptables-restore --noflush` in one transaction, so a pod either gets all of its capture or none; `--dry-run` prints them.
Exit 0 on success; a bad flag or a refused restore is one line on stderr and exit 1 (the
pod's init container fails, and Kubernetes says so), never a half-written table.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys

from proxy.iptables import rules
from proxy.iptables.rules import CaptureConfig, CaptureError

RESOLV_CONF = pathlib.Path("/etc/resolv.conf")  # the pod's own, under `ip netns exec`
_TRUE = ("true", "1", "yes")


def parse_args(
    argv: list[str],
    environ: dict[str, str] | None = None,
    resolv_conf: pathlib.Path = RESOLV_CONF,
) -> tuple[CaptureConfig, bool]:
    """The capture config and whether this is a dry run; raises CaptureError.

    As Istio's, DNS capture is asked for by `--redirect-dns` or the environment
    (REDIRECT_DNS, or the sidecar's ISTIO_META_DNS_CAPTURE, which injection passes to this
    container too); the nameservers to capture are read from resolv.conf unless
    `--capture-all-dns` (CAPTURE_ALL_DNS) captures port 53 to any address."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="istio-iptables", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("-p", "--envoy-port", default="15001", help="outbound capture port (virtualOutbound)")
    add("-z", "--inbound-capture-port", default="15006", help="inbound capture port")
    add("-u", "--proxy-uid", default="1337", help="the proxy's uid(s), comma-separated")
    add("-g", "--proxy-gid", default="", help="the proxy's gid(s) (default: the uids)")
    add("-m", "--istio-inbound-interception-mode", default="REDIRECT", help="REDIRECT or NONE")
    add("-i", "--istio-service-cidr", default="*", help="outbound CIDRs to capture, or *")
    add("-x", "--istio-service-exclude-cidr", default="", help="outbound CIDRs not captured")
    add("-b", "--istio-inbound-ports", default="*", help="inbound ports to capture, or *")
    add("-d", "--istio-local-exclude-ports", default="", help="inbound ports not captured")
    add("-q", "--istio-local-outbound-ports-include", default="", help="outbound ports captured")
    add("-o", "--istio-local-outbound-ports-exclude", default="", help="outbound ports not")
    add("-c", "--istio-exclude-interfaces", default="", help="interfaces left alone")
    add("--redirect-dns", action="store_true", help="send the app's DNS to the agent (15053)")
    add("--capture-all-dns", action="store_true", help="DNS to any address, not resolv.conf's")
    add("-n", "--dry-run", action="store_true", help="print the rules, change nothing")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        if exit_.code == 0:  # --help
            raise
        raise CaptureError("bad arguments (see the usage above)") from exit_
    uids = _ids("-u", args.proxy_uid)
    redirect_dns = args.redirect_dns or any(
        env.get(name, "").lower() in _TRUE for name in ("REDIRECT_DNS", "ISTIO_META_DNS_CAPTURE")
    )
    capture_all = args.capture_all_dns or env.get("CAPTURE_ALL_DNS", "").lower() in _TRUE
    servers: tuple[str, ...] = ()
    if redirect_dns and not capture_all:
        try:
            servers = rules.parse_resolv_nameservers(resolv_conf.read_text())
        except OSError as error:
            raise CaptureError(f"--redirect-dns: cannot read {resolv_conf}: {error}") from None
        if not servers:
            # Istio's warning: with no server to capture, DNS capture is off.
            print(f"istio-iptables: DNS capture asked for, but {resolv_conf} names no IPv4 "
                  "nameserver and --capture-all-dns is off: DNS capture disabled", file=sys.stderr)  # fmt: skip
    config = CaptureConfig(
        proxy_port=_port("-p", args.envoy_port),
        inbound_capture_port=_port("-z", args.inbound_capture_port),
        proxy_uids=uids,
        proxy_gids=_ids("-g", args.proxy_gid) if args.proxy_gid else uids,
        inbound_mode=args.istio_inbound_interception_mode,
        outbound_ip_ranges_include=rules.parse_cidrs("-i", args.istio_service_cidr, wildcard=True),
        outbound_ip_ranges_exclude=rules.parse_cidrs("-x", args.istio_service_exclude_cidr),
        inbound_ports_include=rules.parse_ports("-b", args.istio_inbound_ports, wildcard=True),
        inbound_ports_exclude=rules.parse_ports("-d", args.istio_local_exclude_ports),
        outbound_ports_include=rules.parse_ports("-q", args.istio_local_outbound_ports_include),
        outbound_ports_exclude=rules.parse_ports("-o", args.istio_local_outbound_ports_exclude),
        exclude_interfaces=tuple(i.strip() for i in args.istio_exclude_interfaces.split(",") if i.strip()),
        redirect_dns=redirect_dns,
        capture_all_dns=capture_all,
        dns_servers=servers,
    )  # fmt: skip
    return config, args.dry_run


def _port(flag: str, text: str) -> int:
    (port,) = rules.parse_ports(flag, text) or ("",)
    if not port:
        raise CaptureError(f"{flag}: a port is required")
    return int(port)


def _ids(flag: str, text: str) -> tuple[int, ...]:
    items = [i.strip() for i in text.split(",") if i.strip()]
    if not items or not all(i.isdigit() for i in items):
        raise CaptureError(f"{flag}: {text!r} is not a list of numeric ids")
    return tuple(int(i) for i in items)


def apply(config: CaptureConfig) -> None:
    """Install the rules in this network namespace; raises CaptureError."""
    table = rules.restore_input(rules.nat_rules(config), rules.raw_rules(config))
    restore, save = shutil.which("iptables-restore"), shutil.which("iptables-save")
    if restore is None or save is None:
        raise CaptureError("iptables-restore is not installed (the image needs iptables)")
    saved = subprocess.run([save, "-t", "nat"], capture_output=True, text=True, timeout=30)
    if saved.returncode != 0:
        raise CaptureError(f"iptables-save cannot read the nat table: {saved.stderr.strip()}")
    present = [c for c in rules.CHAINS if f"\n:{c} " in f"\n{saved.stdout}"]
    if present:
        # Restoring again would flush these chains and append a second jump to each of them
        # in PREROUTING and OUTPUT; refuse instead, having changed nothing.
        raise CaptureError(
            f"the chains {', '.join(present)} already exist in this "
            "network namespace (captured before?); nothing changed"
        )
    done = subprocess.run(
        [restore, "--noflush"], input=table, capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        raise CaptureError(f"iptables-restore refused the rules: {done.stderr.strip()}")


def main(argv: list[str]) -> int:
    try:
        config, dry_run = parse_args(argv)
        if dry_run:
            sys.stdout.write(rules.restore_input(rules.nat_rules(config), rules.raw_rules(config)))
            return 0
        apply(config)
    except CaptureError as error:
        print(f"istio-iptables: {error}", file=sys.stderr)
        return 1
    count = len(rules.nat_rules(config)) + len(rules.raw_rules(config))
    dns = " (DNS to 15053)" if config.captures_dns else ""
    print(f"istio-iptables: {count} rules installed{dns}", file=sys.stderr)
    return 0
