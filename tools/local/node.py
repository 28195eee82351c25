"""The local platform's node: its kubelet, serving the pods scheduled to it.

    python -m tools.local.node --kubeconfig run/kubeconfig --node-name local \
        --address 127.0.0.1 --pod-ips 127.0.1.10-127.0.1.99 --pods-dir run/pods \
        --setting discovery_address=127.0.0.1:15012 ... \
        [--workloads-dir run/nodeagent/workloads --sds-sockets-dir run/sds] \
        [--runtime netns --pod-cidr 10.244.0.0/24 --netns-prefix mesh-]

The kubelet (kubelet.py) with the process runtime (processruntime.py) and its HTTP port
(kubeletserver.py: containers' logs and exec, /healthz once its pods are known). `--runtime process`
runs each pod on its own loopback address; `--runtime netns` (root) in its own network
namespace on the node's bridge (netnssandbox.py; the bridge is the platform's, made before the
kubelet starts). What a previous kubelet of this node left running (processes, and with netns
every namespace and link of the prefix) is removed first; pods are stopped when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import logging
import pathlib
import sys

from aiohttp import web
from kubernetes.aio import config

from pkg.aio import program
from tools.local import kubeletserver, netnssandbox, nodedns, processruntime
from tools.local.images import DEFAULT_TABLE, ImageTable, ImageTableError
from tools.local.kubelet import CREDENTIALS_PREFIX, Kubelet, KubeletOptions
from tools.local.podnetwork import DEFAULT_POD_CIDR, DEFAULT_PREFIX, NodeNetwork, PodNetworkError
from tools.local.workloadcredentials import DEFAULT_TRUST_DOMAIN, WorkloadCredentials

log = logging.getLogger("kubelet")


async def serve(
    kubeconfig: str, options: KubeletOptions, network: NodeNetwork | None = None
) -> None:
    reaped = processruntime.reap(options.pods_dir)
    if reaped:
        log.info("stopped what an earlier kubelet left running in %d pods", len(reaped))
    if network is not None:
        removed = await asyncio.to_thread(netnssandbox.reap, network)
        if removed:
            log.info("removed what an earlier kubelet left: %s", ", ".join(removed))
    if options.credentials is not None:
        options.credentials.remove_all(CREDENTIALS_PREFIX)  # its pods were just stopped
    dns = None
    if network is not None:
        try:
            dns = nodedns.node_dns(network.gateway)
            await dns.start()
            options = dataclasses.replace(options, nameserver=network.gateway)
        except OSError as error:
            # Pods still get their Service names from their hosts files; others will not resolve.
            log.warning("no DNS server for the pods on %s:53: %s", network.gateway, error)
            dns = None
    api = await config.new_client_from_config(config_file=kubeconfig, persist_config=False)
    runner: web.AppRunner | None = None
    try:
        async with asyncio.TaskGroup() as tasks:
            sandbox = netnssandbox.NetnsSandbox(network) if network is not None else None
            runtime = processruntime.ProcessRuntime(tasks, sandbox=sandbox)
            kubelet = Kubelet(api, runtime, options)

            def lookup(namespace: str, name: str) -> processruntime.PodSpec | None:
                running = kubelet.running.get((namespace, name))
                return running.spec if running is not None else None

            started = asyncio.Event()
            work = tasks.create_task(kubelet.run(started), name="kubelet")
            await started.wait()
            runner = web.AppRunner(
                kubeletserver.make_app(lookup, kubelet.scrape_targets, runtime), access_log=None
            )
            await runner.setup()
            await web.TCPSite(runner, options.address, options.port).start()
            log.info(
                "kubelet of node %s ready on %s:%d",
                options.node_name,
                options.address,
                options.port,
            )
            try:
                await work
            finally:
                await runtime.close()
    finally:
        if runner is not None:
            await runner.cleanup()
        await api.close()
        if dns is not None:
            await dns.stop()


def _range(text: str) -> tuple[str, str]:
    first, sep, last = text.partition("-")
    try:
        low, high = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last if sep else first)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--pod-ips {text!r}: {error}") from None
    if high < low:
        raise argparse.ArgumentTypeError(
            f"--pod-ips {text!r}: the last address is before the first"
        )
    return str(low), str(high)


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--setting {text!r}: want KEY=VALUE")
    return key, value


def parse_args(
    argv: list[str] | None = None,
) -> tuple[str, str, KubeletOptions, NodeNetwork | None]:
    parser = argparse.ArgumentParser(prog="kubelet", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="the API server's kubeconfig")
    parser.add_argument("--node-name", default="local")
    parser.add_argument("--address", default="127.0.0.1", help="the node's address (hostIP)")
    parser.add_argument("--port", type=int, default=10250, help="the kubelet's port (logs)")
    parser.add_argument(
        "--pod-ips", type=_range, required=True, help="FIRST-LAST addresses of pods"
    )
    parser.add_argument("--pods-dir", type=pathlib.Path, required=True, help="pods' folders")
    parser.add_argument(
        "--images", type=pathlib.Path, default=DEFAULT_TABLE, help="the image table"
    )
    parser.add_argument(
        "--setting",
        type=_setting,
        action="append",
        default=[],
        help="KEY=VALUE for the image table",
    )
    parser.add_argument(
        "--workloads-dir",
        type=pathlib.Path,
        help="the node agent's workload-credentials folder: each pod with a sidecar gets "
        "its own SDS socket, bound there to its service account's identity",
    )
    parser.add_argument(
        "--sds-sockets-dir", type=pathlib.Path, help="where the pods' SDS sockets go (short)"
    )
    parser.add_argument("--trust-domain", default=DEFAULT_TRUST_DOMAIN)
    parser.add_argument(
        "--runtime",
        choices=("process", "netns"),
        default="process",
        help="process: each pod on its own loopback address; netns: each pod in its own "
        "network namespace on the node's bridge (root)",
    )
    parser.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR, help="the node's pod range")
    parser.add_argument(
        "--netns-prefix", default=DEFAULT_PREFIX, help="what every namespace and link starts with"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    network = None
    if args.runtime == "netns":
        why = netnssandbox.unavailable()
        if why:
            parser.error(f"--runtime netns: {why}")
        try:
            network = NodeNetwork(prefix=args.netns_prefix, cidr=args.pod_cidr)
        except PodNetworkError as error:
            parser.error(str(error))
        outside = [a for a in args.pod_ips if ipaddress.IPv4Address(a) not in network.network] + [
            a for a in args.pod_ips if a == network.gateway
        ]
        if outside:
            parser.error(
                f"--pod-ips: {outside[0]} is not a pod address of --pod-cidr {network.cidr} "
                f"(the gateway is {network.gateway})"
            )
    try:
        images = ImageTable.load(args.images)
    except ImageTableError as error:
        parser.error(str(error))
    if (args.workloads_dir is None) != (args.sds_sockets_dir is None):
        parser.error("--workloads-dir and --sds-sockets-dir go together")
    credentials = None
    if args.workloads_dir is not None:
        credentials = WorkloadCredentials(
            folder=args.workloads_dir.resolve(),
            sockets=args.sds_sockets_dir.resolve(),
            trust_domain=args.trust_domain,
        )
    return (
        args.kubeconfig,
        args.log_level,
        KubeletOptions(
            node_name=args.node_name,
            address=args.address,
            port=args.port,
            pod_ips=args.pod_ips,
            pods_dir=args.pods_dir.resolve(),
            images=images,
            settings=dict(args.setting),
            credentials=credentials,
        ),
        network,
    )


def main(argv: list[str] | None = None) -> int:
    kubeconfig, log_level, options, network = parse_args(argv)

    async def run(stop: asyncio.Event) -> None:
        await program.until(stop, serve(kubeconfig, options, network))

    return program.run(run, name="kubelet", level=log_level)


if __name__ == "__main__":
    sys.exit(main())
