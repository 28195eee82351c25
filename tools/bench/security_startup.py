"""Pod start to its first certificate, in a running mesh.

The pod's agent is killed with its Envoy (SIGKILL to its process group) and started again
as the launcher starts it. From just before the start, each milestone is timed by probing
every 10 ms:

- `envoy_admin`: the new Envoy's admin answers;
- `sds_watch`: the node agent lists a watch for the pod's identity (`/debug/secrets`): the
  Envoy has opened its SDS stream and asked;
- `node_agent_cert`: (cold only) the node agent holds a certificate for the identity;
- `envoy_cert`: Envoy holds a workload certificate with the pod's SPIFFE SAN (admin `/certs`);
- `ready`: the agent's `/healthz/ready` answers 200 (Envoy has its config from Pilot, which
  it reaches over mutual TLS with that certificate, and its listeners are active).

Warm: the node agent still holds the identity's certificate (it keeps one nobody watches
until its renewal point), so no CA call. Cold: the node agent is restarted first and the
other pods' Envoys get their certificates back; the pod's start then waits for a fresh key,
CSR and CreateCertificate. `issued_by_ca` counts the issuances during the start.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tools.bench import benchmesh, security_parse
from tools.bench.security_mesh import (
    ADMIN_PORT,
    AGENT_STATUS_PORT,
    answers,
    first_true,
    get_json,
    identity_of,
    kill,
    negated,
    node_agent_url,
    wait_for,
)
from tools.bench.stats import percentile

MILESTONES = ("envoy_admin", "sds_watch", "node_agent_cert", "envoy_cert", "ready")
TIMEOUT = 30.0  # seconds any milestone may take


async def restart_pod(
    bench: benchmesh.BenchMesh, session: aiohttp.ClientSession, pod: str, *, cold: bool
) -> dict[str, Any]:
    """Kill the pod's agent and Envoy, start them again; milliseconds to each milestone."""
    loop = asyncio.get_running_loop()
    ip = bench.ip(pod)
    identity = identity_of(bench, pod)
    secrets_url = node_agent_url(bench)
    certs_url = f"http://{ip}:{ADMIN_PORT}/certs"
    ready_url = f"http://{ip}:{AGENT_STATUS_PORT}/healthz/ready"

    async def secrets() -> list[dict[str, Any]]:
        return await get_json(session, secrets_url)

    before = await secrets()
    others = {s["identity"] for s in before} - {identity}

    async def unwatched() -> bool:
        return security_parse.watchers(await secrets(), identity) == 0

    async def others_served() -> bool:
        status = await secrets()
        return all(
            security_parse.has_certificate(status, i) and security_parse.watchers(status, i) > 0
            for i in others
        )

    await kill(bench, f"{pod}-proxy")
    # Its Envoy leaves with the group; wait until it is gone and its SDS stream closed, so
    # that every milestone below is the new Envoy's.
    await wait_for("the old Envoy to go", negated(lambda: answers(session, certs_url)), 10)
    await wait_for("the node agent to see the SDS stream close", unwatched, 10)
    if cold:
        await kill(bench, "node-agent")
        await bench.mesh.restart("node-agent")
        await wait_for("the other pods' certificates from the new node agent", others_served, 30)
    issued_before = _issued(await secrets(), identity)

    async def admin_up() -> bool:
        return await answers(session, certs_url) is not None

    async def watched() -> bool:
        return security_parse.watchers(await secrets(), identity) > 0

    async def agent_holds() -> bool:
        return security_parse.has_certificate(await secrets(), identity)

    async def envoy_holds() -> bool:
        certs = await get_json(session, certs_url)
        return security_parse.workload_serial(certs, identity) is not None

    async def ready() -> bool:
        return await answers(session, ready_url) == 200

    started = loop.time()
    restart = asyncio.create_task(bench.mesh.restart(f"{pod}-proxy"))
    try:
        times = await asyncio.gather(
            first_true(admin_up, timeout=TIMEOUT),
            first_true(watched, timeout=TIMEOUT),
            first_true(agent_holds, timeout=TIMEOUT),
            first_true(envoy_holds, timeout=TIMEOUT),
            first_true(ready, timeout=TIMEOUT),
        )
    finally:
        await restart
    result: dict[str, Any] = {
        name: round((t - started) * 1e3, 1) if t is not None else None
        for name, t in zip(MILESTONES, times, strict=True)
    }
    if not cold:
        result["node_agent_cert"] = None  # held all along: no milestone
    result["issued_by_ca"] = _issued(await secrets(), identity) - issued_before
    return result


def _issued(secrets: list[dict[str, Any]], identity: str) -> int:
    entry = security_parse.identity_status(secrets, identity)
    return int(entry.get("issued", 0)) if entry is not None else 0


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """p50 and max of each milestone over the restarts (milestones never reached left out)."""
    summary: dict[str, Any] = {}
    for name in MILESTONES:
        values = [s[name] for s in samples if s.get(name) is not None]
        if values:
            summary[name] = {
                "count": len(values),
                "p50_ms": round(percentile(values, 50), 1),
                "max_ms": round(max(values), 1),
            }
    return summary


async def run(
    bench: benchmesh.BenchMesh, *, pod: str, restarts: int, cold_restarts: int
) -> dict[str, Any]:
    results: dict[str, Any] = {"pod": pod}
    async with aiohttp.ClientSession() as session:
        for kind, count in (("warm", restarts), ("cold", cold_restarts)):
            samples = []
            for i in range(count):
                sample = await restart_pod(bench, session, pod, cold=kind == "cold")
                samples.append(sample)
                print(
                    f"{kind} restart {i + 1}/{count} of {pod}: "
                    + ", ".join(f"{k} {v}" for k, v in sample.items()),
                    flush=True,
                )
                await asyncio.sleep(0.5)  # let the restarted pod settle
            results[kind] = {"samples": samples, "summary": summarize(samples)}
    return results
