"""The replay benchmark's parts without a mesh: the recorder, the capture file, one replay."""

from __future__ import annotations

import asyncio
import pathlib
import socket

import grpc

from api.mixer.v1 import report_pb2
from tools.bench import mixer_replay, mixer_workload


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_recorder_keeps_each_report_as_sent_and_answers_it():
    address = f"127.0.0.1:{_free_port()}"
    request = mixer_workload.report_request("svc-0", 3)
    with mixer_replay.Recorder(address) as recorder, grpc.insecure_channel(address) as channel:
        report = channel.unary_unary(
            mixer_replay.REPORT_METHOD,
            request_serializer=report_pb2.ReportRequest.SerializeToString,
            response_deserializer=report_pb2.ReportResponse.FromString,
        )
        assert report(request, timeout=10) == report_pb2.ReportResponse()
        report(request, timeout=10)
        assert recorder.reports == [request.SerializeToString()] * 2


def test_a_capture_file_gives_back_its_reports(tmp_path: pathlib.Path):
    reports = [b"", b"\x0a\x00", bytes(range(256)) * 300]
    mixer_replay.save(reports, tmp_path / "reports.bin")
    assert mixer_replay.load(tmp_path / "reports.bin") == reports


def test_a_replay_times_every_stage_and_each_adapter(tmp_path: pathlib.Path):
    path = tmp_path / "reports.bin"
    mixer_replay.save([mixer_workload.report_request("svc-0", 4).SerializeToString()] * 2, path)
    result = asyncio.run(mixer_replay.replay(path, repeats=1))
    assert (result["reports"], result["entries"]) == (2, 8)
    stages = result["us_per_entry"]
    assert {"decode", "type_check", "evaluate", "whole"} <= set(stages)
    # telemetry.yaml's HTTP rules: the Prometheus metrics and the access log.
    assert any(s.startswith("adapter prometheus.") for s in stages)
    assert any(s.startswith("adapter stdio.") for s in stages)
    assert all(us > 0 for us in stages.values())
