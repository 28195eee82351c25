"""Benchmark: Mixer's Check and Report throughput and latency, its memory, and a profile.

For each config set (`mixer_workload.py`: telemetry.yaml's 4 rules plus 0, 10 and 100
policy rules), a real config store and a real `mixs` are started as processes on
127.0.0.1 (free ports), the config is applied with the ConfigClient before Mixer starts,
and Mixer is ready when its /ready answers 200 and /debug/status shows the snapshot with
every rule and no config error. This process is the client (grpc.aio, several channels,
each its own connection), with every request encoded once up front; then:

1. Check at a fixed rate (open loop, `loadgen.py`; latency from each request's due time);
2. Check at saturation (closed loop, `closedloop.py`: --concurrency requests in flight);
3. Report at a fixed rate, each Report carrying --report-sets delta-encoded attribute sets;
4. Report at saturation;
5. Mixer's memory (RSS, PSS, private), read when ready and again after the load;
6. before the processes start, the same requests through Mixer's code in this process,
   without gRPC (`mixer_inprocess.py`).

Every pass records the answers' status codes (a Check must be denied by the last policy
rule, or allowed with none), the CPU use of Mixer (from /proc) and of this client, so a
saturated client shows, and of every other process (the machine is shared). After the
Report passes the access log's lines and the Prometheus istio_requests_total are compared
with the attribute sets sent.

Then the same client against `null_mixer.py` (a grpc.aio Mixer service that does
nothing): the floor gRPC and asyncio set under every figure. Last, one saturation Check pass with Mixer under cProfile (`python -m cProfile -o ...
-m mixer.cmd.mixs`, stopped with SIGINT so the profile is written): the top functions by
cumulative and by own time, and the time of each area (gRPC, decoding, expressions...).

    PYTHONPATH=. .venv/bin/python tools/bench/mixer_throughput.py [--rules 0 10 100]
    bazel run //tools/bench:mixer_throughput
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import grpc
from prometheus_client.parser import text_string_to_metric_families

from api.mixer.v1 import check_pb2, report_pb2
from pkg.config.resource import Resource
from pkg.kube.client import ConfigClient
from tools.bench import (
    benchmesh,
    closedloop,
    loadgen,
    mixer_inprocess,
    mixer_workload,
    procmem,
    profsummary,
)
from tools.bench import report as results
from tools.bench.mixer_workload import ROOT
from tools.bench.runfolder import run_folder

NAME = "mixer"
HOST = "127.0.0.1"
CHECK_METHOD = "/istio.mixer.v1.Mixer/Check"
REPORT_METHOD = "/istio.mixer.v1.Mixer/Report"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Functions whose cost per call the profile section reports (file suffix:function).
PROFILED_CALLS = (
    "mixer/server/server.py:Check",
    "mixer/server/server.py:check",
    "mixer/server/server.py:decode_checked",
    "mixer/attribute/compressed.py:decode_check",
    "mixer/server/attribute_types.py:type_errors",
    "mixer/runtime/dispatcher.py:check",
    "mixer/runtime/dispatcher.py:_matching",
    "mixer/runtime/snapshot.py:build",
    "mixer/runtime/dispatcher.py:_safecall",
    "mixer/attribute/bag.py:referenced_attributes",
)


# Processes.


@dataclasses.dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: pathlib.Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of every thread so far (/proc/<pid>/stat)."""
        stat = pathlib.Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # fields from the 3rd on (state)
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


_STARTED: list[Process] = []  # stopped by stop_all() whatever happens


def start(
    name: str, argv: list[str], run_dir: pathlib.Path, *, tree: pathlib.Path = ROOT
) -> Process:
    """Run `argv` from source tree `tree` (this one by default), its output in a log."""
    log = run_dir / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        # Its own session: a Ctrl-C at the terminal reaches only this process, which then
        # stops its children itself (SIGINT matters: it is how a profiled Mixer stops).
        popen = subprocess.Popen(
            argv, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    process = Process(name, popen, log)
    _STARTED.append(process)
    return process


def stop(process: Process, sig: signal.Signals = signal.SIGTERM, grace: float = 10.0) -> bool:
    """`sig`, then SIGKILL after `grace` seconds; True if it had to be killed."""
    killed = False
    if process.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.popen.send_signal(sig)
        try:
            process.popen.wait(grace)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()
            killed = True
    if process in _STARTED:
        _STARTED.remove(process)
    return killed


def stop_all() -> None:
    for process in list(_STARTED):
        if stop(process, grace=5.0):
            print(f"had to kill {process.name} ({process.pid})", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


async def wait_until(
    process: Process, ready: Callable[[], Awaitable[bool]], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited ({process.popen.returncode}):\n{process.tail()}"
            )
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            if await ready():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} not ready after {timeout:.0f} s:\n{process.tail()}")
        await asyncio.sleep(0.1)


@dataclasses.dataclass
class MixerUnderTest:
    store: Process
    mixer: Process
    grpc_address: str
    metrics_url: str
    monitoring_url: str
    session: aiohttp.ClientSession
    resources: int  # config resources applied

    async def status(self) -> dict[str, Any]:
        async with self.session.get(f"{self.monitoring_url}/debug/status") as response:
            response.raise_for_status()
            return await response.json()

    async def requests_total(self) -> float:
        """Sum of istio_requests_total over every label set on Mixer's /metrics."""
        async with self.session.get(f"{self.metrics_url}/metrics") as response:
            text = await response.text()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "istio_requests"
            for sample in family.samples
            if sample.name == "istio_requests_total"
        )


async def apply_all(store_url: str, resources: list[Resource], concurrency: int = 8) -> None:
    gate = asyncio.Semaphore(concurrency)
    async with ConfigClient(store_url, timeout=30) as client:

        async def one(resource: Resource) -> None:
            async with gate:
                await client.apply(resource)

        async with asyncio.TaskGroup() as tasks:
            for resource in resources:
                tasks.create_task(one(resource))


@contextlib.asynccontextmanager
async def running_mixer(
    rules: int,
    run_dir: pathlib.Path,
    *,
    profile: pathlib.Path | None = None,
    mixer_tree: pathlib.Path = ROOT,
    label: str = "",
) -> AsyncIterator[MixerUnderTest]:
    """A config store holding config set `rules`, and a ready mixs (from `mixer_tree`)
    reading it.

    With `profile`, mixs runs under cProfile and is stopped with SIGINT (cProfile writes
    its file when the program returns); otherwise with SIGTERM.
    """
    folder = run_dir / f"rules-{rules}{'-profiled' if profile else ''}{label}"
    folder.mkdir()
    resources = mixer_workload.config_set(rules, folder / "access.log")
    store_port = free_port()
    store_url = f"http://{HOST}:{store_port}"
    store = start(
        "config-store",
        [sys.executable, "-m", "pilot.configstore.main", "--address", HOST,
         "--port", str(store_port), "--db", str(folder / "store.db")],
        folder,
    )  # fmt: skip
    mixer: Process | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        try:

            async def store_ready() -> bool:
                async with session.get(f"{store_url}/healthz") as response:
                    return response.status == 200

            await wait_until(store, store_ready)
            await apply_all(store_url, resources)
            grpc_address = f"{HOST}:{free_port()}"
            metrics = f"{HOST}:{free_port()}"
            monitoring = f"{HOST}:{free_port()}"
            profiler = [] if profile is None else ["-m", "cProfile", "-o", str(profile)]
            mixer = start(
                "mixs",
                [sys.executable, *profiler, "-m", "mixer.cmd.mixs", "--config-store", store_url,
                 "--address", grpc_address, "--metrics-address", metrics,
                 "--monitoring-address", monitoring],
                folder,
                tree=mixer_tree,
            )  # fmt: skip
            under_test = MixerUnderTest(
                store,
                mixer,
                grpc_address,
                f"http://{metrics}",
                f"http://{monitoring}",
                session,
                len(resources),
            )
            expected = rules + mixer_workload.TELEMETRY_RULES

            async def mixer_ready() -> bool:
                async with session.get(f"{under_test.monitoring_url}/ready") as response:
                    if response.status != 200:
                        return False
                status = await under_test.status()
                if status["config_errors"]:
                    raise RuntimeError(f"Mixer config errors: {status['config_errors'][:3]}")
                return len(status["rules"]) == expected

            await wait_until(mixer, mixer_ready, timeout=60)
            yield under_test
        finally:
            if mixer is not None:
                sig = signal.SIGINT if profile else signal.SIGTERM
                if stop(mixer, sig, grace=30.0 if profile else 10.0):
                    print(f"mixs had to be killed:\n{mixer.tail()}", file=sys.stderr)
            stop(store)


# The client.


class MixerClient:
    """Channels to Mixer sending pre-encoded Check and Report requests, round robin.

    Requests are serialized once: the calls take bytes (no request serializer), so a
    request costs the client only gRPC's own work and parsing the (small) answer.
    """

    def __init__(self, address: str, channels: int, check: bytes, report: bytes) -> None:
        # A local subchannel pool gives every channel its own connection.
        self._channels = [
            grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(channels)
        ]
        self._checks = [
            c.unary_unary(CHECK_METHOD, response_deserializer=check_pb2.CheckResponse.FromString)
            for c in self._channels
        ]
        self._reports = [
            c.unary_unary(REPORT_METHOD, response_deserializer=report_pb2.ReportResponse.FromString)
            for c in self._channels
        ]
        self._check_bytes = check
        self._report_bytes = report
        self._next = 0
        self.answers: collections.Counter[int] = collections.Counter()

    async def __aenter__(self) -> MixerClient:
        async with asyncio.timeout(10):
            await asyncio.gather(*(c.channel_ready() for c in self._channels))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.close() for c in self._channels))

    def _pick(self) -> int:
        self._next = (self._next + 1) % len(self._channels)
        return self._next

    async def check(self) -> None:
        response = await self._checks[self._pick()](self._check_bytes, timeout=10)
        self.answers[response.precondition.status.code] += 1

    async def report(self) -> None:
        await self._reports[self._pick()](self._report_bytes, timeout=10)
        self.answers[0] += 1


# Passes.


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy so far (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


async def measured(
    server: Process, client: MixerClient, run: Callable[[], Awaitable[Any]]
) -> dict[str, Any]:
    """One pass, with the answers' codes and the CPU of the server, this client and the rest.

    The machine is shared: what other processes used during the pass is recorded so a
    server starved of CPU can be told from a slow one.
    """
    client.answers.clear()
    server_before, machine_before = server.cpu_seconds(), machine_busy_seconds()
    result = await run()
    server_cpu = server.cpu_seconds() - server_before
    machine_cpu = machine_busy_seconds() - machine_before
    figures = result.to_json()
    wall = result.wall
    return {
        **figures,
        "answers": {str(code): n for code, n in sorted(client.answers.items())},
        "mixer_cpu_percent": round(100 * server_cpu / wall, 1),
        "mixer_cpu_us_per_request": round(server_cpu / max(len(result.latencies), 1) * 1e6, 1),
        "other_processes_cpu_percent": round(
            100 * (machine_cpu - server_cpu - result.cpu) / wall, 1
        ),
    }


async def fixed_rate(
    server: Process, client: MixerClient, call: Callable[[], Awaitable[None]], rate: float,
    duration: float,
) -> dict[str, Any]:  # fmt: skip
    return await measured(
        server, client, lambda: loadgen.run_open_loop(call, rate=rate, duration=duration)
    )


async def saturation(
    server: Process, client: MixerClient, call: Callable[[], Awaitable[None]],
    concurrency: int, duration: float,
) -> dict[str, Any]:  # fmt: skip
    return await measured(
        server,
        client,
        lambda: closedloop.run_closed_loop(call, concurrency=concurrency, duration=duration),
    )


async def warm_up(client: MixerClient, checks: int = 300, reports: int = 30) -> None:
    """Every code path once and the first Prometheus label sets, outside the figures."""
    gate = asyncio.Semaphore(8)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(client.check) for _ in range(checks)))
    await asyncio.gather(*(one(client.report) for _ in range(reports)))


def count_lines(path: pathlib.Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(1 for _ in file)
    except FileNotFoundError:
        return 0


async def rule_set(rules: int, run_dir: pathlib.Path, args: argparse.Namespace) -> dict[str, Any]:
    app = mixer_workload.destination_app(rules)
    check = mixer_workload.check_request(app).SerializeToString()
    report_request = mixer_workload.report_request(app, args.report_sets)
    report = report_request.SerializeToString()
    expected = mixer_workload.expected_check_code(rules)
    print("  in process (no gRPC) ...", flush=True)
    in_process = await mixer_inprocess.measure(
        rules, run_dir / f"in-process-{rules}", report_sets=args.report_sets
    )
    async with running_mixer(rules, run_dir) as mixer:
        ready_memory = procmem.read_memory(mixer.mixer.pid).to_json()
        async with MixerClient(mixer.grpc_address, args.channels, check, report) as client:
            await warm_up(client)
            sets_before = (await mixer.requests_total(), count_lines(_access_log(run_dir, rules)))
            figures: dict[str, Any] = {"check": {}, "report": {}}
            print(f"  check at {args.check_rate:g}/s ...", flush=True)
            figures["check"]["fixed_rate"] = await fixed_rate(
                mixer.mixer, client, client.check, args.check_rate, args.duration
            )
            print(f"  check, {args.concurrency} in flight ...", flush=True)
            figures["check"]["saturation"] = await saturation(
                mixer.mixer, client, client.check, args.concurrency, args.duration
            )
            print(f"  report at {args.report_rate:g}/s ...", flush=True)
            figures["report"]["fixed_rate"] = await fixed_rate(
                mixer.mixer, client, client.report, args.report_rate, args.duration
            )
            print(f"  report, {args.concurrency} in flight ...", flush=True)
            figures["report"]["saturation"] = await saturation(
                mixer.mixer, client, client.report, args.concurrency, args.duration
            )
        # The access log's writer thread may lag behind under load: wait (bounded) for it.
        sent = (
            sum(figures["report"][m]["ok"] for m in ("fixed_rate", "saturation")) * args.report_sets
        )
        deadline = time.monotonic() + 15
        while (  # noqa: ASYNC110  Mixer's process writes the file: nothing to wait on but it
            count_lines(_access_log(run_dir, rules)) - sets_before[1] < sent
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.1)
        loaded_memory = procmem.read_memory(mixer.mixer.pid).to_json()
        status = await mixer.status()
        resources = mixer.resources
        sets_after = (await mixer.requests_total(), count_lines(_access_log(run_dir, rules)))
    for mode in ("fixed_rate", "saturation"):
        entry = figures["report"][mode]
        entry["attribute_sets_per_s"] = round(_reports_per_s(entry) * args.report_sets, 1)
    reports_sent = sum(figures["report"][m]["ok"] for m in ("fixed_rate", "saturation"))
    wrong = {
        mode: entry["answers"]
        for mode, entry in figures["check"].items()
        if set(entry["answers"]) - {str(expected)}
    }
    return {
        "rules": rules + mixer_workload.TELEMETRY_RULES,
        "policy_rules": rules,
        "config_resources": resources,
        "expected_check_code": expected,
        "unexpected_check_answers": wrong,
        "in_process": in_process,
        **figures,
        "telemetry_delivered": {
            "attribute_sets_sent": reports_sent * args.report_sets,
            "istio_requests_total_added": int(sets_after[0] - sets_before[0]),
            "access_log_lines_added": sets_after[1] - sets_before[1],
        },
        "mixer_counters": status["counters"],
        "memory": {"ready": ready_memory, "after_load": loaded_memory},
    }


def _reports_per_s(entry: dict[str, Any]) -> float:
    if "throughput_per_s" in entry:
        return entry["throughput_per_s"]
    return entry["achieved_rate"] if entry["errors"] == 0 else entry["ok"] / entry["duration_s"]


def _access_log(run_dir: pathlib.Path, rules: int) -> pathlib.Path:
    return run_dir / f"rules-{rules}" / "access.log"


async def null_baseline(run_dir: pathlib.Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same client against `null_mixer.py`: what gRPC alone costs per Check and Report."""
    folder = run_dir / "null-mixer"
    folder.mkdir()
    app = mixer_workload.destination_app(10)
    check = mixer_workload.check_request(app).SerializeToString()
    report = mixer_workload.report_request(app, args.report_sets).SerializeToString()
    address = f"{HOST}:{free_port()}"
    server = start(
        "null-mixer", [sys.executable, "-m", "tools.bench.null_mixer", "--address", address], folder
    )
    try:

        async def ready() -> bool:
            return "null mixer ready" in server.tail()

        await wait_until(server, ready)
        figures: dict[str, Any] = {"check": {}, "report": {}}
        async with MixerClient(address, args.channels, check, report) as client:
            await warm_up(client)
            print(f"  check at {args.check_rate:g}/s ...", flush=True)
            figures["check"]["fixed_rate"] = await fixed_rate(
                server, client, client.check, args.check_rate, args.duration
            )
            print(f"  check, {args.concurrency} in flight ...", flush=True)
            figures["check"]["saturation"] = await saturation(
                server, client, client.check, args.concurrency, args.duration
            )
            print(f"  report, {args.concurrency} in flight ...", flush=True)
            figures["report"]["saturation"] = await saturation(
                server, client, client.report, args.concurrency, args.duration
            )
        figures["report"]["saturation"]["attribute_sets_per_s"] = round(
            figures["report"]["saturation"]["throughput_per_s"] * args.report_sets, 1
        )
        figures["memory"] = procmem.read_memory(server.pid).to_json()
        return figures
    finally:
        stop(server)


async def profiled(rules: int, run_dir: pathlib.Path, args: argparse.Namespace) -> dict[str, Any]:
    """One saturation Check pass with mixs under cProfile; the profile summed up."""
    app = mixer_workload.destination_app(rules)
    check = mixer_workload.check_request(app).SerializeToString()
    report = mixer_workload.report_request(app, args.report_sets).SerializeToString()
    profile = run_dir / f"mixs-{rules}-rules.prof"
    # mixs writes the profile when it exits, at the end of running_mixer.
    async with (
        running_mixer(rules, run_dir, profile=profile) as mixer,
        MixerClient(mixer.grpc_address, args.channels, check, report) as client,
    ):
        await warm_up(client, reports=0)
        print(f"  check, {args.concurrency} in flight, Mixer under cProfile ...", flush=True)
        figures = await saturation(
            mixer.mixer, client, client.check, args.concurrency, args.duration
        )
    if not profile.exists() or profile.stat().st_size == 0:
        raise RuntimeError(f"mixs under cProfile wrote no profile to {profile}")
    if args.profile_out is not None:
        shutil.copyfile(profile, args.profile_out)
    stats = profsummary.load(profile)
    total = profsummary.total_seconds(stats)
    return {
        "policy_rules": rules,
        "saturation_under_profiler": figures,
        "profile_bytes": profile.stat().st_size,
        "profiled_seconds": round(total, 2),
        "areas_own_seconds": {k: round(v, 2) for k, v in profsummary.areas(stats).items()},
        "calls": profsummary.find(stats, PROFILED_CALLS),
        "top_cumulative": profsummary.top(stats, "cumulative", 15, ROOT),
        "top_own": profsummary.top(stats, "total", 15, ROOT),
    }


async def run(args: argparse.Namespace, run_dir: pathlib.Path) -> dict[str, Any]:
    app = mixer_workload.destination_app(10)
    check = mixer_workload.check_request(app)
    report = mixer_workload.report_request(app, args.report_sets)
    sets: dict[str, Any] = {}
    for rules in args.rules:
        print(f"config set: telemetry + {rules} policy rules", flush=True)
        sets[str(rules)] = await rule_set(rules, run_dir, args)
        print_rule_set(sets[str(rules)])
    baseline = None
    if not args.skip_baseline:
        print("baseline: null_mixer.py (gRPC server, no Mixer logic)", flush=True)
        baseline = await null_baseline(run_dir, args)
        print_passes(baseline)
    profile = None
    if args.profile_rules is not None:
        print(f"profile: telemetry + {args.profile_rules} policy rules", flush=True)
        profile = await profiled(args.profile_rules, run_dir, args)
        print_profile(profile)
    return {
        "config": {
            "rules": args.rules,
            "duration_s": args.duration,
            "check_rate": args.check_rate,
            "report_rate": args.report_rate,
            "report_sets": args.report_sets,
            "concurrency": args.concurrency,
            "channels": args.channels,
            "check_attributes": len(mixer_workload.check_attributes(app)),
            "check_request_bytes": check.ByteSize(),
            "report_attributes_per_set": len(mixer_workload.report_attributes(app, 0)),
            "report_request_bytes": report.ByteSize(),
        },
        "rule_sets": sets,
        "null_mixer_baseline": baseline,
        "profile": profile,
    }


# Output.


def print_rule_set(entry: dict[str, Any]) -> None:
    print_passes(entry)
    memory = entry["memory"]
    delivered = entry["telemetry_delivered"]
    print(
        f"  Mixer memory ready RSS {memory['ready']['rss_mib']} / PSS {memory['ready']['pss_mib']}"
        f" MiB, after load RSS {memory['after_load']['rss_mib']} / PSS "
        f"{memory['after_load']['pss_mib']} MiB; attribute sets sent "
        f"{delivered['attribute_sets_sent']}, istio_requests_total +"
        f"{delivered['istio_requests_total_added']}, access log +"
        f"{delivered['access_log_lines_added']} lines"
    )
    inside = entry["in_process"]
    print(
        f"  in process, no gRPC (us): Check {inside['check_us']} (decode {inside['decode_us']},"
        f" type check {inside['type_check_us']}, dispatch {inside['dispatch_us']}, with "
        f"referenced attributes {inside['dispatch_and_referenced_attributes_us']}); Report "
        f"{inside['report_us']} ({inside['report_us_per_attribute_set']} a set, type check "
        f"{inside['report_type_check_us']})"
    )
    if entry["unexpected_check_answers"]:
        print(f"  UNEXPECTED Check answers: {entry['unexpected_check_answers']}")


def print_passes(entry: dict[str, Any]) -> None:
    rows = []
    for kind in ("check", "report"):
        for mode in ("fixed_rate", "saturation"):
            data = entry[kind].get(mode)
            if data is None:
                continue
            latency = data["latency"] or {}
            rows.append(
                [
                    kind,
                    mode,
                    data.get("throughput_per_s", data.get("achieved_rate")),
                    data.get("attribute_sets_per_s", "-"),
                    latency.get("p50_ms", "-"),
                    latency.get("p99_ms", "-"),
                    latency.get("max_ms", "-"),
                    data["errors"],
                    data["mixer_cpu_percent"],
                    data["mixer_cpu_us_per_request"],
                    data["generator_cpu_percent"],
                    data["other_processes_cpu_percent"],
                    " ".join(f"{c}:{n}" for c, n in data["answers"].items()),
                ]
            )
    headers = ["call", "mode", "req/s", "sets/s", "p50 ms", "p99 ms", "max ms", "errors",
               "server cpu%", "server us/req", "client cpu%", "others cpu%", "answers"]  # fmt: skip
    print(report_table(headers, rows))


def print_profile(profile: dict[str, Any]) -> None:
    figures = profile["saturation_under_profiler"]
    print(
        f"  under cProfile: {figures['throughput_per_s']} checks/s, "
        f"profiled {profile['profiled_seconds']} s of Mixer's event loop thread"
    )
    total = sum(profile["areas_own_seconds"].values()) or 1.0
    print(
        report_table(
            ["area (own time)", "s", "%"],
            [[a, s, round(100 * s / total, 1)] for a, s in profile["areas_own_seconds"].items()],
        )
    )
    for key, title in (("top_cumulative", "cumulative"), ("top_own", "own time")):
        print(f"  top 15 by {title}:")
        rows = [
            [r["function"][:90], r["calls"], r["own_s"], r["cumulative_s"]] for r in profile[key]
        ]
        print(report_table(["function", "calls", "own s", "cum s"], rows))


def report_table(headers: list[str], rows: list[list[Any]]) -> str:
    return "\n".join("  " + line for line in results.table(headers, rows).splitlines())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rules",
        type=int,
        nargs="*",
        default=[0, 10, 100],
        help="policy rules of each config set (telemetry's 4 always added)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each pass")
    parser.add_argument("--check-rate", type=float, default=1000.0, help="Checks a second")
    parser.add_argument(
        "--report-rate",
        type=float,
        default=100.0,
        help="Reports a second (each of --report-sets attribute sets)",
    )
    parser.add_argument("--report-sets", type=int, default=10, help="attribute sets per Report")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="requests in flight at saturation"
    )
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (connections)")
    parser.add_argument(
        "--profile-rules",
        type=int,
        default=10,
        help="policy rules of the profiled pass; -1: no profile",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="no null_mixer.py passes")
    parser.add_argument(
        "--profile-out",
        type=pathlib.Path,
        default=None,
        help="also keep the cProfile file here (pstats format)",
    )
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        default=None,
        help="folder of the result file (default tools/bench/results)",
    )
    args = parser.parse_args(argv)
    if args.profile_rules is not None and args.profile_rules < 0:
        args.profile_rules = None
    return args


def print_log_tails(run_dir: pathlib.Path) -> None:
    for log in sorted(run_dir.glob("*/*.log")):
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print(f"--- {log.relative_to(run_dir)} ---", *tail, sep="\n", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with run_folder("mixer", on_failure=print_log_tails) as run_dir:
        try:
            result = asyncio.run(run(args, run_dir))
        finally:
            stop_all()
    print(f"written to {results.write_result(NAME, result, directory=args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(benchmesh.interruptible(main))
