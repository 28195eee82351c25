import asyncio

import grpc

from api.mixer.v1 import check_pb2, report_pb2, service_pb2_grpc
from tools.bench import mixer_workload, null_mixer


def test_answers_every_check_ok_and_every_report_empty() -> None:
    async def scenario() -> tuple[check_pb2.CheckResponse, report_pb2.ReportResponse, int, int]:
        servicer = null_mixer.NullMixer()
        server = grpc.aio.server()
        service_pb2_grpc.add_MixerServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = service_pb2_grpc.MixerStub(channel)
                check = await stub.Check(mixer_workload.check_request("svc-1"), timeout=5)
                await stub.Check(mixer_workload.check_request("svc-2"), timeout=5)
                report = await stub.Report(mixer_workload.report_request("svc-1", 3), timeout=5)
        finally:
            await server.stop(None)
        return check, report, servicer.checks, servicer.reports

    check, report, checks, reports = asyncio.run(scenario())
    assert check.precondition.status.code == 0
    assert check.precondition.valid_use_count > 0
    assert check.precondition.valid_duration.seconds > 0
    assert report == report_pb2.ReportResponse()
    assert (checks, reports) == (2, 1)
