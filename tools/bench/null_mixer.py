"""A Mixer that does nothing: the cost of a grpc.aio Check/Report server by itself.

It serves istio.mixer.v1.Mixer as mixs does (grpc.aio, async handlers, requests parsed
into CheckRequest/ReportRequest by gRPC), but answers every Check with one fixed
response and every Report with an empty one. What a saturated null Mixer costs per call
is the floor under mixs' figures: gRPC, protobuf and asyncio, no Mixer logic.

    PYTHONPATH=. python -m tools.bench.null_mixer --address 127.0.0.1:9091
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import grpc

from api.mixer.v1 import check_pb2, report_pb2, service_pb2_grpc


def fixed_check_response() -> check_pb2.CheckResponse:
    """An allow as mixs answers it: status, cache duration and use count."""
    response = check_pb2.CheckResponse()
    response.precondition.valid_duration.seconds = 5
    response.precondition.valid_use_count = 10000
    return response


class NullMixer(service_pb2_grpc.MixerServicer):
    def __init__(self) -> None:
        self._check = fixed_check_response()
        self._report = report_pb2.ReportResponse()
        self.checks = 0
        self.reports = 0

    async def Check(
        self, request: check_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> check_pb2.CheckResponse:
        self.checks += 1
        return self._check

    async def Report(
        self, request: report_pb2.ReportRequest, context: grpc.aio.ServicerContext
    ) -> report_pb2.ReportResponse:
        self.reports += 1
        return self._report


async def serve(address: str) -> None:
    server = grpc.aio.server()
    service_pb2_grpc.add_MixerServicer_to_server(NullMixer(), server)
    port = server.add_insecure_port(address)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"null mixer ready on {address.rpartition(':')[0]}:{port}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await server.stop(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="127.0.0.1:9091", help="gRPC address")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
