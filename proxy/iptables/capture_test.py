"""istio-iptables in a real network namespace, with the kernel's nat table: an app's outbound
connection reaches the outbound capture port with its original destination intact (what
Envoy's virtualOutbound reads), the proxy's own connections are left alone, the proxy calling
its pod's address goes through inbound capture, and the app talking to itself does not. With
DNS capture the app's queries (UDP and TCP) reach the agent's 15053 and the proxy's own reach
the resolver.

The namespace (`inj<MESH_TEST_NET>-ipt-<pid>`) holds a veth pair as the pod's interface; it
and everything in it are deleted afterwards. Needs root, `ip` and iptables (tools/setup.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.iptables.rules_test import DEFAULT_ARGS

ROOT = Path(__file__).absolute().parents[2]
NET = int(os.environ.get("MESH_TEST_NET", "0"))
POD_IP, ELSEWHERE = f"10.{NET}.0.1", f"10.{NET}.0.2"

# Runs inside the namespace: listeners on the capture ports and the app's port, then one
# connection per case from a child with the case's uid; prints where each one arrived.
PROBE = r"""
import json, os, socket, struct, sys, threading
"x".encode("idna")  # load the codec now: after setuid(1337) its module may be unreadable
SO_ORIGINAL_DST = 80
arrived = {}
def listen(port):
    server = socket.create_server(("0.0.0.0", port), reuse_port=True)
    def serve():
        while True:
            conn, _ = server.accept()
            raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            dst = f"{socket.inet_ntoa(raw[4:8])}:{struct.unpack('!H', raw[2:4])[0]}"
            tag = conn.recv(64).decode()
            arrived[tag] = {"port": port, "original_dst": dst}
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
for port in (15001, 15006, 9080, 15021):
    listen(port)
for tag, uid, host, port in json.loads(sys.argv[1]):
    child = os.fork()
    if child == 0:  # the owner match sees this uid and gid (no exec: 1337 may not read python)
        try:
            os.setgid(uid)
            os.setuid(uid)
            with socket.create_connection((host, port), timeout=3) as s:
                s.sendall(tag.encode())
                s.recv(1)
        except OSError as error:
            print(f"{tag}: {error}", file=sys.stderr)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
print(json.dumps(arrived))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"inj{NET}-ipt-{os.getpid()}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer")
        _ip("-n", name, "addr", "add", f"{POD_IP}/24", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "link", "set", "eth0-peer", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def _in(netns: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)  # fmt: skip


def test_the_capture_redirects_as_istios_does(netns: str) -> None:
    agent = [sys.executable, "-m", "proxy.agent.main", "istio-iptables"]
    installed = _in(netns, *agent, *DEFAULT_ARGS)
    assert installed.returncode == 0, installed.stderr
    saved = _in(netns, "iptables-save", "-t", "nat").stdout
    assert "-A OUTPUT -p tcp -j ISTIO_OUTPUT" in saved
    assert ":ISTIO_IN_REDIRECT" in saved

    cases = [
        ("app-out", 0, ELSEWHERE, 9080),  # the app calls another pod: to Envoy's outbound
        ("proxy-out", 1337, "127.0.0.1", 15021),  # the proxy's own traffic: untouched
        ("proxy-to-pod", 1337, POD_IP, 9080),  # the proxy calls its pod's IP: via inbound
        ("app-to-self", 0, POD_IP, 9080),  # the app calls itself: untouched
    ]
    probe = _in(netns, sys.executable, "-c", PROBE, json.dumps(cases))
    assert probe.returncode == 0, probe.stderr
    arrived = json.loads(probe.stdout)
    assert arrived == {
        "app-out": {"port": 15001, "original_dst": f"{ELSEWHERE}:9080"},
        "proxy-out": {"port": 15021, "original_dst": "127.0.0.1:15021"},
        "proxy-to-pod": {"port": 15006, "original_dst": f"{POD_IP}:9080"},
        "app-to-self": {"port": 9080, "original_dst": f"{POD_IP}:9080"},
    }


def test_a_second_run_is_refused_and_changes_nothing(netns: str) -> None:
    agent = [sys.executable, "-m", "proxy.agent.main", "istio-iptables"]
    assert _in(netns, *agent, *DEFAULT_ARGS).returncode == 0
    before = _in(netns, "iptables-save", "-t", "nat").stdout
    again = _in(netns, *agent, *DEFAULT_ARGS)
    # Restoring again would duplicate the jumps in PREROUTING and OUTPUT: refused, unchanged.
    assert again.returncode == 1
    assert again.stderr.startswith("istio-iptables: the chains ISTIO_INBOUND, ")
    assert "already exist in this network namespace" in again.stderr
    after = _in(netns, "iptables-save", "-t", "nat").stdout
    strip = [line for line in before.splitlines() if not line.startswith("#")]
    assert strip == [line for line in after.splitlines() if not line.startswith("#")]


# DNS: an "agent" on 127.0.0.1:15053 and an "upstream" resolver on ELSEWHERE:53 (an address of
# the namespace's own, so a packet the rules leave alone arrives there), UDP and TCP; each
# answers with its name. One query per case from a child with the case's uid.
DNS_PROBE = r"""
import json, os, socket, sys, threading
"x".encode("idna")  # load the codec now: after setuid(1337) its module may be unreadable
def udp(address, name):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(address)
    def serve():
        while True:
            data, peer = server.recvfrom(512)
            server.sendto(name.encode(), peer)
    threading.Thread(target=serve, daemon=True).start()
def tcp(address, name):
    server = socket.create_server(address)
    def serve():
        while True:
            conn, _ = server.accept()
            conn.recv(64)
            conn.sendall(name.encode())
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
for serve in (udp, tcp):
    serve(("127.0.0.1", 15053), "agent")
    serve((sys.argv[2], 53), "upstream")
answers = {}
for tag, uid, proto in json.loads(sys.argv[1]):
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(reader)
        answer = "nothing"
        try:
            os.setgid(uid)
            os.setuid(uid)
            if proto == "udp":
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(3)
                    s.sendto(tag.encode(), (sys.argv[2], 53))
                    answer = s.recvfrom(64)[0].decode()
            else:
                with socket.create_connection((sys.argv[2], 53), timeout=3) as s:
                    s.sendall(tag.encode())
                    answer = s.recv(64).decode()
        except OSError as error:
            answer = f"error: {error}"
        finally:
            os.write(writer, answer.encode())
            os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    answers[tag] = os.read(reader, 256).decode()
print(json.dumps(answers))
"""


@pytest.fixture
def resolver(netns: str) -> Iterator[str]:
    """The namespace's resolv.conf names ELSEWHERE (as a pod's names its cluster DNS), which
    is also an address of the namespace's own."""
    _ip("-n", netns, "addr", "add", f"{ELSEWHERE}/32", "dev", "eth0-peer")
    etc = Path("/etc/netns") / netns
    etc.mkdir(parents=True, exist_ok=True)
    try:
        (etc / "resolv.conf").write_text(
            f"nameserver {ELSEWHERE}\nsearch default.svc.cluster.local\n"
        )
        yield ELSEWHERE
    finally:
        (etc / "resolv.conf").unlink(missing_ok=True)
        etc.rmdir()


def test_dns_capture_sends_the_apps_queries_to_the_agent_and_not_the_proxys(
    netns: str, resolver: str
) -> None:
    agent = [sys.executable, "-m", "proxy.agent.main", "istio-iptables"]
    installed = _in(netns, *agent, *DEFAULT_ARGS, "--redirect-dns")
    assert installed.returncode == 0, installed.stderr
    assert "(DNS to 15053)" in installed.stderr
    cases = [
        ("app-udp", 0, "udp"),  # the app's query: to the agent
        ("app-tcp", 0, "tcp"),
        ("app-user-udp", 1000, "udp"),
        ("proxy-udp", 1337, "udp"),  # the agent's own query upstream: untouched, no loop
        ("proxy-tcp", 1337, "tcp"),
    ]
    probe = _in(netns, sys.executable, "-c", DNS_PROBE, json.dumps(cases), resolver)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {
        "app-udp": "agent",
        "app-tcp": "agent",
        "app-user-udp": "agent",
        "proxy-udp": "upstream",
        "proxy-tcp": "upstream",
    }
    raw = _in(netns, "iptables-save", "-t", "raw").stdout
    assert (
        "-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1"
        in raw
    )
