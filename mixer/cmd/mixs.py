"""mixs: Mixer's server. Policy checks and telemetry reports, configured from the config store."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from mixer.server.server import MixerOptions, MixerServer
from pkg.aio import program


def parse_args(argv: list[str] | None = None) -> tuple[MixerOptions, str]:
    """The options and the log level."""
    parser = argparse.ArgumentParser(prog="mixs", description=__doc__)
    parser.add_argument("command", nargs="?", default="server", choices=["server"])
    parser.add_argument("--config-store", default="http://127.0.0.1:8001", help="config store URL")
    parser.add_argument("--address", default="127.0.0.1:9091", help="Mixer API (gRPC) address")
    parser.add_argument(
        "--metrics-address", default="127.0.0.1:42422", help="adapters' Prometheus /metrics"
    )
    parser.add_argument(
        "--monitoring-address", default="127.0.0.1:9093", help="/ready and /debug/status"
    )
    parser.add_argument(
        "--config-default-namespace", default="istio-system", help="rules here apply everywhere"
    )
    parser.add_argument(
        "--adapter-timeout", type=float, default=1.0, help="seconds an adapter call may take"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    options = MixerOptions(
        config_store=args.config_store,
        grpc_address=args.address,
        metrics_address=args.metrics_address,
        monitoring_address=args.monitoring_address,
        default_namespace=args.config_default_namespace,
        adapter_timeout=args.adapter_timeout,
    )
    return options, args.log_level


async def serve(options: MixerOptions, stop: asyncio.Event) -> None:
    await program.until(stop, MixerServer(options).run())
    logging.getLogger("mixer").info("mixs stopped")


def main(argv: list[str] | None = None) -> int:
    options, log_level = parse_args(argv)
    return program.run(lambda stop: serve(options, stop), name="mixs", level=log_level)


if __name__ == "__main__":
    sys.exit(main())
