"""Handshake cost in request latency: details' inbound sidecar with mutual TLS, then plaintext.

At a fixed rate (open loop, `loadgen.py`), for each phase:

- `sidecar_keepalive` / `sidecar_new_connection`: as productpage's app calls details, through
  its sidecar as HTTP proxy (`http://details:9080/details/0` via `<productpage ip>:15001`),
  two Envoys; the app's connection to its sidecar kept or new per request (`Connection:
  close`). The sidecar pools its upstream connections to details whatever the app does, so
  the mTLS handshake there is paid once per pooled connection, not per request: the
  `client_sidecar.tls_handshakes` count of each run shows how many there were.
- `direct_mtls_*` / `direct_plaintext_*`: straight to details' inbound listener
  (`<details ip>:15006`), one Envoy, this process presenting a workload certificate from
  the mesh's CA (productpage's identity) in the mTLS phase; kept or new per request, so a
  new connection is a full TLS handshake with client certificate on details' Envoy.

Phase `mtls` is the mesh's default (auto mTLS, PERMISSIVE). Phase `plaintext` applies a
PeerAuthentication (app=details, mode DISABLE): details' inbound takes plaintext only and
auto mTLS makes productpage's sidecar send plaintext. On each switch, Pilot's `/debug/syncz`
must show a new push acknowledged by every proxy, and details' Envoy must hold no
connection of the other kind (Envoy drains those) before measuring. Each round measures
both phases (mTLS, then plaintext, then the policy is deleted again), so the drift of a
shared machine falls on both; a path's latency is over every round's requests. Envoy's
counters (TLS handshakes, connections) and the CPU time of productpage's and details' Envoys
are read around every run, and the connections open on details' inbound listener, TLS or
plaintext, after it. A direct new-connection run's latency also holds this process's own
(Python) TLS client handshake; the Envoys' CPU per request is the proxies' share alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from cryptography import x509

from pkg.ca.client import create_certificate
from pkg.ca.csr import csr_for, key_pem, new_key
from pkg.config import loader
from pkg.config.resource import Resource
from pkg.kube.client import ConfigClient
from tools.bench import benchmesh, loadgen, procmem, security_parse
from tools.bench.security_mesh import (
    ADMIN_PORT,
    INBOUND_PORT,
    get_json,
    identity_of,
    wait_for,
)
from tools.bench.security_parse import process_cpu_seconds
from tools.bench.stats import Summary
from tools.local.topology import CA_PORT

PLAINTEXT_POLICY = "bench-details-plaintext"
SIDECARS = ("productpage-v1", "details-v1")  # the Envoys whose CPU time is read
# Envoy counters read around each run (regexes on stat names), on each side.
CLIENT_STATS = {
    "tls_handshakes": r"details\.default\.svc\.cluster\.local\.ssl\.handshake$",
    "connections": r"details\.default\.svc\.cluster\.local\.upstream_cx_total$",
}
SERVER_STATS = {
    "tls_handshakes": rf"^listener\..*_{INBOUND_PORT}\.ssl\.handshake$",
    "connections": rf"^http\.inbound_0\.0\.0\.0_{INBOUND_PORT}\.downstream_cx_total$",
    "tls_connections": rf"^http\.inbound_0\.0\.0\.0_{INBOUND_PORT}\.downstream_cx_ssl_total$",
}
ACTIVE_STATS = {
    "all": rf"^http\.inbound_0\.0\.0\.0_{INBOUND_PORT}\.downstream_cx_active$",
    "tls": rf"^http\.inbound_0\.0\.0\.0_{INBOUND_PORT}\.downstream_cx_ssl_active$",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    rate: float = 100.0  # requests a second
    duration: float = 5.0  # seconds measured per path, per round
    warm_up: float = 1.0  # seconds sent before each measurement, not measured
    # Each round measures both phases, so slow drift of a shared machine falls on both.
    rounds: int = 2


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    url: str
    new_connection: bool
    proxy: str | None = None
    tls: ssl.SSLContext | None = None
    host: str | None = None


def targets(bench: benchmesh.BenchMesh, tls: ssl.SSLContext | None) -> list[Target]:
    """Through productpage's sidecar, then straight to details' inbound listener (TLS with a
    workload certificate when `tls` is given, else plaintext), each keep-alive and not."""
    details = bench.ip("details-v1")
    direct = "direct_mtls" if tls else "direct_plaintext"
    scheme = "https" if tls else "http"
    url = f"{scheme}://{details}:{INBOUND_PORT}/details/0"
    proxy = bench.outbound_proxy("productpage-v1")
    return [
        Target("sidecar_keepalive", "http://details:9080/details/0", False, proxy=proxy),
        Target("sidecar_new_connection", "http://details:9080/details/0", True, proxy=proxy),
        Target(f"{direct}_keepalive", url, False, tls=tls, host="details:9080"),
        Target(f"{direct}_new_connection", url, True, tls=tls, host="details:9080"),
    ]


async def envoy_stats(
    session: aiohttp.ClientSession, ip: str, patterns: dict[str, str]
) -> dict[str, int]:
    async with session.get(f"http://{ip}:{ADMIN_PORT}/stats") as response:
        stats = security_parse.parse_stats(await response.text())
    return {name: security_parse.stat_sum(stats, pattern) for name, pattern in patterns.items()}


@dataclasses.dataclass(frozen=True)
class Run:
    """One measured run of a target, and what the Envoys counted meanwhile."""

    load: loadgen.LoadResult
    client_sidecar: Mapping[str, int]  # counter deltas on productpage's Envoy
    details_sidecar: Mapping[str, int]  # counter deltas on details' Envoy
    # Connections open on details' inbound listener at the end of the run, by kind: what a
    # pooled connection from productpage's sidecar really is.
    open_tls: int
    open_plaintext: int
    # CPU seconds each Envoy used during the run ("productpage", "details"): the handshake's
    # cost to the proxies themselves, apart from this process's (the generator's) own.
    envoy_cpu: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.load.to_json(),
            "client_sidecar": self.client_sidecar,
            "details_sidecar": self.details_sidecar,
            "details_open_tls": self.open_tls,
            "details_open_plaintext": self.open_plaintext,
            "envoy_cpu_ms_per_request": _per_request(self.envoy_cpu, self.load.sent),
        }


async def measure(bench: benchmesh.BenchMesh, target: Target, settings: Settings) -> Run:
    headers = {"Connection": "close"} if target.new_connection else {}
    if target.host:
        headers["Host"] = target.host
    # force_close: a new connection (and with TLS a full handshake) for every request.
    connector = aiohttp.TCPConnector(limit=0, force_close=target.new_connection)
    client_ip, server_ip = bench.ip("productpage-v1"), bench.ip("details-v1")
    envoys = {pod.removesuffix("-v1"): envoy_pid(bench, pod) for pod in SIDECARS}
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        aiohttp.ClientSession() as admin,
    ):

        async def request() -> None:
            async with session.get(
                target.url, proxy=target.proxy, headers=headers, ssl=target.tls or True
            ) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")

        await loadgen.run_open_loop(request, rate=settings.rate, duration=settings.warm_up)
        client_before = await envoy_stats(admin, client_ip, CLIENT_STATS)
        server_before = await envoy_stats(admin, server_ip, SERVER_STATS)
        cpu_before = {name: process_cpu_seconds(pid) for name, pid in envoys.items()}
        load = await loadgen.run_open_loop(request, rate=settings.rate, duration=settings.duration)
        cpu = {name: process_cpu_seconds(pid) - cpu_before[name] for name, pid in envoys.items()}
        client_after = await envoy_stats(admin, client_ip, CLIENT_STATS)
        server_after = await envoy_stats(admin, server_ip, SERVER_STATS)
        active = await envoy_stats(admin, server_ip, ACTIVE_STATS)
    return Run(
        load=load,
        client_sidecar={k: client_after[k] - client_before[k] for k in CLIENT_STATS},
        details_sidecar={k: server_after[k] - server_before[k] for k in SERVER_STATS},
        open_tls=active["tls"],
        open_plaintext=active["all"] - active["tls"],
        envoy_cpu=cpu,
    )


def envoy_pid(bench: benchmesh.BenchMesh, pod: str) -> int:
    """The pid of the pod's Envoy (its agent's child)."""
    agent = bench.process(f"{pod}-proxy").pid
    pid = procmem.envoy_of(agent, bench.bootstrap_path(pod))
    if pid is None:
        raise RuntimeError(f"no Envoy found for {pod} (agent pid {agent})")
    return pid


def _per_request(cpu: Mapping[str, float], requests: int) -> dict[str, float]:
    return (
        {name: round(seconds / requests * 1e3, 3) for name, seconds in cpu.items()}
        if requests
        else {}
    )


def combine(target: Target, runs: list[Run]) -> dict[str, Any]:
    """A target's rounds as one result: latency over every round's requests, counters summed,
    and each round as measured."""
    latencies = [x for run in runs for x in run.load.latencies]
    service = [x for run in runs for x in run.load.service]
    return {
        "url": target.url,
        "via": target.proxy or "direct",
        "new_connection_per_request": target.new_connection,
        "sent": sum(run.load.sent for run in runs),
        "ok": len(latencies),
        "errors": sum(run.load.errors for run in runs),
        "latency": Summary.of_seconds(latencies).to_json() if latencies else None,
        "service_time": Summary.of_seconds(service).to_json() if service else None,
        "client_sidecar": _sum(run.client_sidecar for run in runs),
        "details_sidecar": _sum(run.details_sidecar for run in runs),
        "envoy_cpu_ms_per_request": _per_request(
            _sum(run.envoy_cpu for run in runs), sum(run.load.sent for run in runs)
        ),
        "rounds": [run.to_json() for run in runs],
    }


def _sum(amounts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Totals by name (counters stay ints: a sum of ints starting from 0 is one)."""
    total: dict[str, float] = {}
    for amount in amounts:
        for name, value in amount.items():
            total[name] = total.get(name, 0) + value
    return total


@dataclasses.dataclass(frozen=True)
class ClientTls:
    context: ssl.SSLContext
    root: x509.Certificate


async def client_tls(bench: benchmesh.BenchMesh, work: pathlib.Path) -> ClientTls:
    """A TLS client context presenting a workload certificate (productpage's identity) from
    the mesh's CA, as a sidecar would.

    It does not have ssl verify the server's chain (a workload certificate names no host, and
    these figures were taken when OpenSSL still took the CA's leaves for self-signed; the CA
    now adds key identifiers); `server_identity` checks the chain once instead. The handshake
    still checks the server's signature over it (TLS 1.3 CertificateVerify), so its cost is
    nearly a verifying client's.
    """
    topology = bench.topology
    root = (topology.ca_dir / "root-cert.pem").read_bytes()
    token = topology.node_agent_token.read_text().strip()
    key = new_key("ec")
    chain = await create_certificate(
        f"{topology.control_address}:{CA_PORT}",
        root,
        csr_for(key, identity_of(bench, "productpage-v1")),
        3600,
        token,
    )
    await asyncio.to_thread(_write_client_files, work, "".join(chain), key_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(work / "cert.pem", work / "key.pem")
    return ClientTls(context=context, root=x509.load_pem_x509_certificate(root))


def _write_client_files(work: pathlib.Path, chain_pem: str, key_pem_bytes: bytes) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "cert.pem").write_text(chain_pem)
    (work / "key.pem").write_bytes(key_pem_bytes)


async def server_identity(bench: benchmesh.BenchMesh, tls: ClientTls) -> list[str]:
    """The URI SANs of the certificate details' inbound listener presents to a mutual-TLS
    client, checked to be signed by the mesh's root (raises if it is not)."""
    async with asyncio.timeout(10):
        _, writer = await asyncio.open_connection(
            bench.ip("details-v1"), INBOUND_PORT, ssl=tls.context
        )
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
            await writer.wait_closed()
    leaf = x509.load_der_x509_certificate(der)
    leaf.verify_directly_issued_by(tls.root)  # raises InvalidSignature or ValueError
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sans.get_values_for_type(x509.UniformResourceIdentifier)


async def wait_synced(
    session: aiohttp.ClientSession, bench: benchmesh.BenchMesh, after: int
) -> None:
    """Until Pilot pushed past `after` and every proxy acknowledged everything."""
    url = f"{bench.topology.pilot_http_url}/debug/syncz"
    proxies = len(bench.topology.pods) + 1  # and the ingress gateway

    async def synced() -> bool:
        status = await get_json(session, url)
        return security_parse.pushes(status) > after and security_parse.all_synced(status, proxies)

    await wait_for("every proxy to be SYNCED", synced, 20)


async def pilot_pushes(session: aiohttp.ClientSession, bench: benchmesh.BenchMesh) -> int:
    return security_parse.pushes(
        await get_json(session, f"{bench.topology.pilot_http_url}/debug/syncz")
    )


async def run(bench: benchmesh.BenchMesh, settings: Settings) -> dict[str, Any]:
    [policy] = loader.load_text(
        security_parse.peer_authentication(PLAINTEXT_POLICY, "default", "details", "DISABLE"),
        source="security_handshake.py",
    )
    tls = await client_tls(bench, bench.topology.run_dir / "bench-client")
    presents = await server_identity(bench, tls)
    print(f"details' inbound listener presents {presents}", flush=True)
    phases = {"mtls": targets(bench, tls.context), "plaintext": targets(bench, None)}
    runs: dict[str, dict[str, list[Run]]] = {p: {t.name: [] for t in phases[p]} for p in phases}
    async with (
        aiohttp.ClientSession() as session,
        ConfigClient(bench.topology.config_store_url) as client,
    ):
        plaintext = False
        try:
            for round_ in range(settings.rounds):
                for phase, chosen in phases.items():
                    if (phase == "plaintext") != plaintext:
                        plaintext = phase == "plaintext"
                        await switch(session, client, bench, policy, plaintext=plaintext)
                    for target in chosen:
                        run = await measure(bench, target, settings)
                        runs[phase][target.name].append(run)
                        _print_run(phase, round_, target, run)
        finally:
            if plaintext:
                await switch(session, client, bench, policy, plaintext=False)
    return {
        "config": dataclasses.asdict(settings),
        "details_presents": presents,
        **{
            phase: {t.name: combine(t, runs[phase][t.name]) for t in chosen}
            for phase, chosen in phases.items()
        },
    }


async def switch(
    session: aiohttp.ClientSession,
    client: ConfigClient,
    bench: benchmesh.BenchMesh,
    policy: Resource,
    *,
    plaintext: bool,
) -> None:
    """Apply (plaintext) or delete (mTLS) the policy; wait until every proxy has it and
    details' Envoy holds no connection of the other kind (Envoy drains those a changed
    filter chain served within --drain-time-s, 2 s)."""
    pushed = await pilot_pushes(session, bench)
    if plaintext:
        await client.apply(policy)
    else:
        await client.delete(policy.schema, policy.metadata.name, policy.metadata.namespace)
    await wait_synced(session, bench, pushed)

    async def drained() -> bool:
        active = await envoy_stats(session, bench.ip("details-v1"), ACTIVE_STATS)
        left = active["tls"] if plaintext else active["all"] - active["tls"]
        return left == 0

    kind = "TLS" if plaintext else "plaintext"
    await wait_for(f"details' {kind} connections to drain", drained, 15)


def _print_run(phase: str, round_: int, target: Target, run: Run) -> None:
    data = run.load.to_json()
    latency = data["latency"] or {}
    print(
        f"{phase:9} round {round_ + 1} {target.name:33} "
        f"p50 {latency.get('p50_ms', float('nan')):6.2f} "
        f"p90 {latency.get('p90_ms', float('nan')):6.2f} "
        f"p99 {latency.get('p99_ms', float('nan')):6.2f} ms; {data['ok']}/{data['sent']} ok; "
        f"TLS handshakes: details {run.details_sidecar['tls_handshakes']}, "
        f"client sidecar {run.client_sidecar['tls_handshakes']}; details open TLS "
        f"{run.open_tls} plaintext {run.open_plaintext}",
        flush=True,
    )
    for sample in data["error_samples"]:
        print(f"    error: {sample}", flush=True)
