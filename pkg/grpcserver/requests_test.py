"""add_unary_service over a real channel: undecodable bytes are INVALID_ARGUMENT, good ones
reach the servicer parsed."""

from __future__ import annotations

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2

from api.mixer.v1 import check_pb2, report_pb2, service_pb2
from pkg.grpcserver.requests import add_unary_service, parse_request
from pkg.grpcserver.server import UNARY, new_server
from pkg.testing.aio import run_async

MIXER = service_pb2.DESCRIPTOR.services_by_name["Mixer"]
CHECK = "/istio.mixer.v1.Mixer/Check"

# A CheckRequest whose deduplication_id (field 3, a proto3 string) is not UTF-8.
INVALID_UTF8 = b"\x1a\x02\xc3\x28"
UNDECODABLE = {
    "random bytes": b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    "truncated": check_pb2.CheckRequest(deduplication_id="abcdef").SerializeToString()[:-2],
    "invalid utf-8": INVALID_UTF8,
}


class _Echo:
    """Answers a Check with the deduplication id it was sent, to show it got the message."""

    def __init__(self) -> None:
        self.calls = 0

    async def Check(self, request, context):
        self.calls += 1
        response = check_pb2.CheckResponse()
        response.precondition.status.message = request.deduplication_id
        return response

    async def Report(self, request, context):
        self.calls += 1
        return report_pb2.ReportResponse()


async def _serve(servicer, undecodable: list[str]):
    server = new_server(UNARY)
    add_unary_service(server, MIXER, servicer, on_undecodable=undecodable.append)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.mark.parametrize("data", list(UNDECODABLE.values()), ids=list(UNDECODABLE))
def test_undecodable_bytes_are_invalid_argument(data: bytes):
    @run_async
    async def scenario():
        servicer, undecodable = _Echo(), []
        server, address = await _serve(servicer, undecodable)
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                check = channel.unary_unary(CHECK, request_serializer=None)
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await check(data, timeout=5)
                assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "cannot parse the request as istio.mixer.v1.CheckRequest" in (
                    error.value.details()
                )
                assert servicer.calls == 0
                assert undecodable == ["Check"]
                # The server goes on serving: a good request on the same channel is answered.
                good = check_pb2.CheckRequest(deduplication_id="call-1").SerializeToString()
                answer = check_pb2.CheckResponse.FromString(await check(good, timeout=5))
                assert answer.precondition.status.message == "call-1"
        finally:
            await server.stop(None)

    scenario()


def test_parse_request_names_the_type_and_the_size():
    with pytest.raises(ValueError, match=r"istio.mixer.v1.CheckRequest \(4 bytes\)"):
        parse_request(check_pb2.CheckRequest, INVALID_UTF8)
    assert parse_request(report_pb2.ReportRequest, b"") == report_pb2.ReportRequest()


@run_async
async def test_streaming_methods_are_refused():
    ads = ads_pb2.DESCRIPTOR.services_by_name["AggregatedDiscoveryService"]
    server = new_server(UNARY)
    with pytest.raises(ValueError, match="streams"):
        add_unary_service(server, ads, object())
