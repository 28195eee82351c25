"""mixs: Mixer's server. Policy checks and telemetry reports, configured from the config store."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from mixer.server.server import MixerOptions, MixerServer
from pkg.aio.signals import serve_until_signalled


def parse_args(argv: list[str] | None = None) -> MixerOptions:
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
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    return MixerOptions(
        config_store=args.config_store,
        grpc_address=args.address,
        metrics_address=args.metrics_address,
        monitoring_address=args.monitoring_address,
        default_namespace=args.config_default_namespace,
        adapter_timeout=args.adapter_timeout,
    )


async def serve(options: MixerOptions) -> None:
    await serve_until_signalled(MixerServer(options).run())
    logging.getLogger("mixer").info("mixs stopped")


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
