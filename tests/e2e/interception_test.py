"""Transparent interception end to end: an app with no proxy settings, Istio's iptables rules,
the real Envoy as uid 1337, and a real Pilot serving the capture listeners.

Two network namespaces, joined by a veth pair, both deleted afterwards (also on failure):

    cl<NET>-ctl-<pid>  10.<NET>.44.1     config store, pilot-discovery (xDS on .44.1:15010),
                       10.<NET>.44.1x    and the mesh's other workloads: reviews v1/v2 (HTTP),
                       10.<NET>.44.2x    tcp-echo v1/v2 (Istio's sample: "one"/"two"),
                       10.<NET>.44.3x    external hosts registered by ServiceEntries (HTTP,
                                         TLS by SNI, resolved by DNS) and servers nobody
                                         registered
    cl<NET>-pod-<pid>  10.<NET>.44.2     the pod: `pilot-agent istio-iptables`, Envoy (uid
                                         1337) and the app (HTTP on 9080); every call the
                                         test makes "from the app" runs here as root
    cl<NET>-egw-<pid>  10.<NET>.46.2     the egress gateway's Envoy (a router), routed to
                                         through the control namespace

Services have addresses in 10.<NET>.45.0/24 (ServiceEntry `addresses`, as cluster IPs): only
the sidecar knows them, so a call reaching its backend went through Envoy. Pilot reads the
mesh config from the ConfigMap istio-system/istio; flipping its outboundTrafficPolicy changes
what the app may reach with neither Pilot nor Envoy restarted.

The pod and the gateway resolve the external names from their own hosts files
(`/etc/netns/<namespace>/hosts`, which `ip netns exec` puts in place of /etc/hosts): so does
Envoy, for the DNS clusters (which must resolve before Envoy asks for endpoints and
listeners).

Needs root (network namespaces, iptables), `ip`, `iptables` and `setpriv`.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pilot.xds.testing import ads_bootstrap
from pkg.testing.envoy import envoy_path
from pkg.testing.wait import eventually

ROOT = pathlib.Path(__file__).absolute().parents[2]
NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = f"10.{NET}.44"
VIPS = f"10.{NET}.45"
CTL, POD = f"{SUBNET}.1", f"{SUBNET}.2"
EGRESS_NET = f"10.{NET}.46"
EGRESS_GATEWAY = f"{EGRESS_NET}.2"
PROXY_UID = 1337

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "iptables", "setpriv")),
    reason="interception needs root (network namespaces, iptables: Istio's init container "
    "needs NET_ADMIN) and the ip, iptables and setpriv tools",
)

MESH = f"""
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [{VIPS}.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints:
  - {{address: {SUBNET}.11, labels: {{app: reviews, version: v1}}}}
  - {{address: {SUBNET}.12, labels: {{app: reviews, version: v2}}}}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: tcp-echo, namespace: default}}
spec:
  hosts: [tcp-echo.default.svc.cluster.local]
  addresses: [{VIPS}.20]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints:
  - {{address: {SUBNET}.21, labels: {{app: tcp-echo, version: v1}}}}
  - {{address: {SUBNET}.22, labels: {{app: tcp-echo, version: v2}}}}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {{name: tcp-echo, namespace: default}}
spec:
  host: tcp-echo
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: httpbin-external, namespace: default}}
spec:
  hosts: [httpbin.external.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 8000, name: http, protocol: HTTP}}]
  endpoints: [{{address: {SUBNET}.31}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: app, namespace: default}}
spec:
  hosts: [app.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: app}}}}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {{name: app, namespace: default}}
spec: {{address: {POD}, labels: {{app: app}}}}
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: secure-external, namespace: default}}
spec:
  hosts: [secure.external.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{{number: 443, name: tls, protocol: TLS}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: dns-external, namespace: default}}
spec:
  hosts: [dns.external.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{{number: 8080, name: http, protocol: HTTP}}]
---
apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
"""
HOSTS = {
    "secure.external.test": f"{SUBNET}.33",
    "other.external.test": f"{SUBNET}.34",
    "dns.external.test": f"{SUBNET}.35",
}


def write_certificate(folder: pathlib.Path, name: str, dns_name: str) -> None:
    """A self-signed certificate for a TLS server outside the mesh: `<name>.pem`, `.key`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


REVIEWS_V2 = """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
"""


def tcp_shift(v1: int, v2: int) -> str:
    # Istio's tcp-echo traffic shifting (virtual-service-tcp-echo-20-80.yaml's shape).
    return f"""
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {{name: tcp-echo, namespace: default}}
spec:
  hosts: [tcp-echo]
  tcp:
  - match: [{{port: 9000}}]
    route:
    - {{destination: {{host: tcp-echo, port: {{number: 9000}}, subset: v1}}, weight: {v1}}}
    - {{destination: {{host: tcp-echo, port: {{number: 9000}}, subset: v2}}, weight: {v2}}}
"""


# Istio's egress-gateway task (HTTP), for an external host of the test's own.
EGRESS = f"""
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: edition, namespace: default}}
spec:
  hosts: [edition.external.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http-port, protocol: HTTP}}]
  endpoints: [{{address: {SUBNET}.36}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {{name: istio-egressgateway, namespace: istio-system}}
spec:
  hosts: [istio-egressgateway.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http2, protocol: HTTP, targetPort: 8080}}]
  endpoints: [{{address: {EGRESS_GATEWAY}, labels: {{istio: egressgateway}}}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata: {{name: istio-egressgateway, namespace: default}}
spec:
  selector: {{istio: egressgateway}}
  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: [edition.external.test]}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {{name: egressgateway-for-edition, namespace: default}}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{{name: edition}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {{name: direct-edition-through-egress-gateway, namespace: default}}
spec:
  hosts: [edition.external.test]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{{gateways: [mesh], port: 80}}]
    route:
    - destination: {{host: istio-egressgateway.istio-system.svc.cluster.local, subset: edition,
                    port: {{number: 80}}}}
      weight: 100
  - match: [{{gateways: [istio-egressgateway], port: 80}}]
    route: [{{destination: {{host: edition.external.test, port: {{number: 80}}}}, weight: 100}}]
"""


def mesh_configmap(mode: str) -> str:
    return f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    outboundTrafficPolicy:
      mode: {mode}
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


class Process:
    """A process started inside a namespace, its output in a file, killed by its owner."""

    def __init__(self, name: str, argv: list[str], log: pathlib.Path) -> None:
        self.name, self.log = name, log
        self._file = log.open("wb")
        self.popen = subprocess.Popen(argv, stdout=self._file, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=ROOT, env=_env())  # fmt: skip

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log.read_text(errors="replace"))
            if found:
                return found
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not ready ({pattern!r}):\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._file.close()


class Mesh:
    """The two namespaces and everything running in them (see the module's docstring)."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.ctl = f"cl{NET}-ctl-{os.getpid()}"
        self.pod = f"cl{NET}-pod-{os.getpid()}"
        self.egw = f"cl{NET}-egw-{os.getpid()}"
        self.processes: list[Process] = []
        self.store_url = ""
        # `ip netns exec` mounts the files of /etc/netns/<namespace>/ over /etc's: the pod
        # and the gateway resolve the external names (Envoy's DNS clusters too).
        self.etc = [pathlib.Path("/etc/netns") / n for n in (self.pod, self.egw)]

    # Set-up and tear-down.

    def up(self) -> None:
        hosts = "".join(f"{address} {name}\n" for name, address in HOSTS.items())
        for etc in self.etc:
            etc.mkdir(parents=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{hosts}")
        tls_dir = self.workdir / "tls"
        tls_dir.mkdir()
        write_certificate(tls_dir, "secure", "secure.external.test")
        write_certificate(tls_dir, "other", "other.external.test")
        os.environ["TLS_DIR"] = str(tls_dir)  # for the TLS servers' process
        for namespace in (self.ctl, self.pod, self.egw):
            _ip("netns", "add", namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", self.ctl, "link", "add", "ctl0", "type", "veth", "peer", "name", "eth0",
            "netns", self.pod)  # fmt: skip
        _ip("-n", self.ctl, "addr", "add", f"{CTL}/24", "dev", "ctl0")
        for host in (11, 12, 21, 22, 31, 32, 33, 34, 35, 36):
            _ip("-n", self.ctl, "addr", "add", f"{SUBNET}.{host}/32", "dev", "ctl0")
        _ip("-n", self.ctl, "link", "set", "ctl0", "up")
        _ip("-n", self.pod, "addr", "add", f"{POD}/24", "dev", "eth0")
        _ip("-n", self.pod, "link", "set", "eth0", "up")
        _ip("-n", self.pod, "route", "add", "default", "via", CTL)
        # The gateway's namespace hangs off the control one, which routes between the two.
        _ip("-n", self.ctl, "link", "add", "egw0", "type", "veth", "peer", "name", "eth0",
            "netns", self.egw)  # fmt: skip
        _ip("-n", self.ctl, "addr", "add", f"{EGRESS_NET}.1/24", "dev", "egw0")
        _ip("-n", self.ctl, "link", "set", "egw0", "up")
        _ip("-n", self.egw, "addr", "add", f"{EGRESS_GATEWAY}/24", "dev", "eth0")
        _ip("-n", self.egw, "link", "set", "eth0", "up")
        _ip("-n", self.egw, "route", "add", "default", "via", f"{EGRESS_NET}.1")
        forwarding = self.run(self.ctl, ["sysctl", "-w", "net.ipv4.ip_forward=1"])
        assert forwarding.returncode == 0, forwarding.stderr

        store = self.start(self.ctl, "config-store", [sys.executable, "-m",
                           "pilot.configstore.main", "--address", "127.0.0.1", "--port", "0",
                           "--db", str(self.workdir / "store.db"), "--no-system-namespaces"])  # fmt: skip
        self.store_url = store.wait_for(r"ready: serving (http://\S+)").group(1)
        self.apply(MESH)
        pilot = self.start(self.ctl, "pilot", [sys.executable, "-m", "pilot.cmd.discovery",
                           "--config-store", self.store_url, "--grpc-address", f"{CTL}:15010",
                           "--http-address", "127.0.0.1:15014", "--debounce-after", "0.01"])  # fmt: skip
        pilot.wait_for("pilot-discovery ready")
        self.start(self.ctl, "backends", [sys.executable, "-m", "tests.e2e.interception_apps",
                   "serve", f"http:{SUBNET}.11:9080:reviews-v1", f"http:{SUBNET}.12:9080:reviews-v2",
                   f"echo:{SUBNET}.21:9000:one", f"echo:{SUBNET}.22:9000:two",
                   f"http:{SUBNET}.31:8000:httpbin-external",
                   f"http:{SUBNET}.32:8000:unregistered", f"echo:{SUBNET}.32:7000:unregistered",
                   f"tls:{SUBNET}.33:443:secure", f"tls:{SUBNET}.34:443:other",
                   f"http:{SUBNET}.35:8080:dns-external", f"http:{SUBNET}.36:80:edition"],
                   ).wait_for("ready")  # fmt: skip

        # The pod: Istio's init step, the app, then the sidecar as the proxy's own user.
        rules = self.run(self.pod, [sys.executable, "-m", "proxy.agent.main", "istio-iptables",
                         "-p", "15001", "-z", "15006", "-u", str(PROXY_UID), "-m", "REDIRECT",
                         "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021"])  # fmt: skip
        assert rules.returncode == 0, rules.stderr
        self.start(self.pod, "app", [sys.executable, "-m", "tests.e2e.interception_apps",
                   "serve", "http:0.0.0.0:9080:app"]).wait_for("ready")  # fmt: skip
        sidecar = {
            "NAMESPACE": "default",
            "LABELS": {"app": "app"},
            "INTERCEPTION_MODE": "REDIRECT",
        }
        self.start_envoy(self.pod, "envoy", f"sidecar~{POD}~app.default~default.svc.cluster.local",
                         sidecar, uid=PROXY_UID)  # fmt: skip
        # The egress gateway (Istio's istio-egressgateway), in a namespace of its own.
        gateway = {"NAMESPACE": "istio-system", "LABELS": {"istio": "egressgateway"}}
        self.start_envoy(self.egw, "egress-gateway",
                         f"router~{EGRESS_GATEWAY}~istio-egressgateway-1.istio-system~"
                         "istio-system.svc.cluster.local", gateway, uid=0)  # fmt: skip
        self.wait(lambda: "virtualOutbound" in self.admin("/listeners"), "Envoy's listeners")

    def start_envoy(
        self, namespace: str, name: str, node_id: str, metadata: dict[str, Any], *, uid: int
    ) -> Process:
        """The real Envoy, everything from Pilot over ADS, as `uid` (1337: the proxy's own
        user, whose connections iptables lets pass)."""
        bootstrap = ads_bootstrap(node_id, 15010, xds_host=CTL, cluster=name, metadata=metadata,
                                  admin_port=15000)  # fmt: skip
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(bootstrap))
        path.chmod(0o644)
        return self.start(namespace, name, [
            "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            envoy_path(), "-c", str(path), "--disable-hot-restart", "--concurrency", "1",
            "--log-level", "warn"])  # fmt: skip

    def down(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        for namespace in (self.pod, self.egw, self.ctl):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        for etc in self.etc:
            shutil.rmtree(etc, ignore_errors=True)
        os.environ.pop("TLS_DIR", None)

    def dump(self) -> None:
        for process in self.processes:
            print(f"--- {process.name} ---\n{process.tail()}", file=sys.stderr)

    # Doing things in the namespaces.

    def start(self, namespace: str, name: str, argv: list[str]) -> Process:
        process = Process(name, ["ip", "netns", "exec", namespace, *argv],
                          self.workdir / f"{name}.log")  # fmt: skip
        self.processes.append(process)
        return process

    def run(self, namespace: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True,
                              text=True, timeout=120, cwd=ROOT, env=_env())  # fmt: skip

    def app(self, *args: str) -> Any:
        """An interception_apps command run in the pod, as its app (root: captured)."""
        done = self.run(self.pod, [sys.executable, "-m", "tests.e2e.interception_apps", *args])
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def get(self, url: str, host: str | None = None, count: int = 1) -> list[dict[str, Any]]:
        return self.app("get", url, *(["--host", host] if host else []), "--count", str(count))

    def admin(self, path: str) -> str:
        (result,) = self.get(f"http://127.0.0.1:15000{path}")
        return str(result.get("body", ""))

    def apply(self, text: str) -> None:
        path = self.workdir / f"apply-{time.monotonic_ns()}.yaml"
        path.write_text(text)
        done = self.run(self.ctl, [sys.executable, "-m", "tests.e2e.interception_apps", "apply",
                                   self.store_url, str(path)])  # fmt: skip
        assert done.returncode == 0, done.stderr

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        asyncio.run(eventually(condition, timeout=timeout, interval=0.3, what=what))


@pytest.fixture(scope="module")
def mesh(request: pytest.FixtureRequest) -> Iterator[Mesh]:
    # Envoy runs as uid 1337: its bootstrap must be readable outside root's pytest folders.
    workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"cl{NET}-interception-"))
    workdir.chmod(0o755)
    under_test = Mesh(workdir)
    failed = request.session.testsfailed
    try:
        try:
            under_test.up()
        except BaseException:
            under_test.dump()
            raise
        yield under_test
        if request.session.testsfailed > failed:
            under_test.dump()
    finally:
        under_test.down()
        shutil.rmtree(workdir, ignore_errors=True)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
        for namespace in (under_test.pod, under_test.egw, under_test.ctl):
            assert namespace not in left.stdout


def names(results: list[dict[str, Any]]) -> list[str]:
    return [json.loads(r["body"])["name"] if r.get("status") == 200 else str(r) for r in results]


def test_an_http_call_to_a_services_address_is_routed_by_its_virtual_service(mesh: Mesh):
    # No VirtualService: both versions serve; the Host may be the address or a short name.
    seen = set(names(mesh.get(f"http://{VIPS}.10:9080/", count=20)))
    assert seen == {"reviews-v1", "reviews-v2"}
    assert set(names(mesh.get(f"http://{VIPS}.10:9080/", host="reviews:9080", count=4))) <= seen
    mesh.apply(REVIEWS_V2)
    mesh.wait(lambda: set(names(mesh.get(f"http://{VIPS}.10:9080/", count=10))) == {"reviews-v2"},
              "all reviews calls routed to v2")  # fmt: skip
    assert set(names(mesh.get(f"http://{VIPS}.10:9080/", host="reviews", count=20))) == {
        "reviews-v2"
    }


def test_an_inbound_call_reaches_the_app_through_virtual_inbound(mesh: Mesh):
    done = mesh.run(mesh.ctl, [sys.executable, "-m", "tests.e2e.interception_apps", "get",
                               f"http://{POD}:9080/"])  # fmt: skip
    (result,) = json.loads(done.stdout)
    assert result.get("status") == 200, result
    answer = json.loads(result["body"])
    # The app saw its sidecar (from 127.0.0.6, Istio's inbound source), not the caller.
    assert answer == {"name": "app", "peer": "127.0.0.6", "host": f"{POD}:9080"}
    stats = mesh.admin("/stats?filter=inbound_0.0.0.0_9080.downstream_rq_completed")
    assert re.search(r"downstream_rq_completed: [1-9]", stats), stats


def test_tcp_traffic_shifting_100_0_then_80_20_over_200_connections(mesh: Mesh):
    # Without a VirtualService the service's own cluster (both versions) answers.
    assert set(mesh.app("tcp", f"{VIPS}.20", "9000", "20")) == {"one", "two"}
    mesh.apply(tcp_shift(100, 0))
    mesh.wait(lambda: mesh.app("tcp", f"{VIPS}.20", "9000", "20") == {"one": 20}, "100/0")
    assert mesh.app("tcp", f"{VIPS}.20", "9000", "50") == {"one": 50}
    mesh.apply(tcp_shift(80, 20))
    mesh.wait(lambda: "two" in mesh.app("tcp", f"{VIPS}.20", "9000", "20"), "the 80/20 shift")
    counts = mesh.app("tcp", f"{VIPS}.20", "9000", "200")
    assert sum(counts.values()) == 200, counts
    assert set(counts) <= {"one", "two"}, counts
    # Binomial(200, 0.8): mean 160, standard deviation 5.7; 130..190 is more than 5 of them.
    assert 130 <= counts.get("one", 0) <= 190, counts


def _allowed(mesh: Mesh) -> dict[str, bool]:
    """What the app may reach: an unregistered HTTP host on a mesh HTTP port, an unregistered
    TCP port, and the external host a ServiceEntry registers."""
    (http,) = mesh.get(f"http://{SUBNET}.32:8000/")
    tcp = mesh.app("tcp", f"{SUBNET}.32", "7000", "1")
    tls = mesh.app("tls", HOSTS["other.external.test"], "443", "other.external.test")
    (external,) = mesh.get(f"http://{SUBNET}.31:8000/", host="httpbin.external.test")
    secure = mesh.app("tls", HOSTS["secure.external.test"], "443", "secure.external.test")
    return {
        "unregistered-http": http.get("status") == 200,
        "unregistered-tcp": tcp == {"unregistered": 1},
        "unregistered-tls": tls == {"name": "other"},
        "registered": external.get("status") == 200
        and json.loads(external["body"])["name"] == "httpbin-external"
        and secure == {"name": "secure"},
    }


def test_registry_only_from_the_mesh_configmap_without_restarts(mesh: Mesh):
    pids = {p.name: p.popen.pid for p in mesh.processes}
    # No ConfigMap: the default, ALLOW_ANY.
    assert _allowed(mesh) == {"unregistered-http": True, "unregistered-tcp": True,
                              "unregistered-tls": True, "registered": True}  # fmt: skip
    mesh.apply(mesh_configmap("REGISTRY_ONLY"))
    only = {"unregistered-http": False, "unregistered-tcp": False, "unregistered-tls": False,
            "registered": True}  # fmt: skip
    mesh.wait(lambda: _allowed(mesh) == only, "REGISTRY_ONLY")
    # The unregistered HTTP host gets Istio's 502 from block_all; the TCP port is closed.
    (refused,) = mesh.get(f"http://{SUBNET}.32:8000/")
    assert refused.get("status") == 502, refused
    mesh.apply(mesh_configmap("ALLOW_ANY"))
    mesh.wait(lambda: all(_allowed(mesh).values()), "ALLOW_ANY again")
    assert {p.name: p.popen.pid for p in mesh.processes} == pids
    assert all(p.popen.poll() is None for p in mesh.processes)


def test_egress_to_external_hosts_by_sni_and_by_dns(mesh: Mesh):
    # TLS to a registered external host: the SNI picks the chain, Envoy resolves the name.
    assert mesh.app("tls", HOSTS["secure.external.test"], "443", "secure.external.test") == {
        "name": "secure"
    }
    # An HTTP ServiceEntry resolved by DNS: whatever address the app dialed, Envoy sends the
    # request to the address it resolved for the Host (nothing listens on .32:8080).
    results = mesh.get(f"http://{SUBNET}.32:8080/", host="dns.external.test:8080", count=3)
    assert names(results) == ["dns-external"] * 3
    clusters = mesh.admin("/clusters")
    assert f"outbound|8080||dns.external.test::{HOSTS['dns.external.test']}:8080" in clusters


def test_egress_through_the_egress_gateway_as_istios_task(mesh: Mesh):
    def peers(count: int = 5) -> set[str]:
        """Who the external host saw calling (or what went wrong)."""
        results = mesh.get(f"http://{SUBNET}.36/", host="edition.external.test", count=count)
        return {json.loads(r["body"])["peer"] if r.get("status") == 200 else str(r)
                for r in results}  # fmt: skip

    # Unregistered (ALLOW_ANY): the pod's connection reaches the host itself.
    assert peers() == {POD}
    mesh.apply(EGRESS)
    mesh.wait(lambda: peers() == {EGRESS_GATEWAY}, "requests leaving through the egress gateway")
    # Every request now leaves the mesh from the gateway, none from the pod.
    assert peers(20) == {EGRESS_GATEWAY}
