"""The stdio handler end to end: instances in, lines out on stdout, stderr or a file.

Tests run under the shared harness's `run_async`, which also fails a test that leaves a
writer task running after `close()`.
"""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import Mapping
from typing import Any

import pytest

from mixer.adapter import testing
from mixer.adapter.api import LogEntryHandler, MetricHandler
from mixer.adapter.testing import run_async
from mixer.adapters.stdio.stdio import INFO, StdioHandler
from mixer.template.templates import LogEntry, Metric

WHEN = datetime.datetime(2018, 7, 30, 12, 0, 1, 250000, tzinfo=datetime.UTC)
NAME = "accesslog.istio-system"


async def build(params: Mapping[str, Any]) -> StdioHandler:
    handler = await testing.build_handler(INFO, params, {"logentry": [NAME]})
    assert isinstance(handler, StdioHandler)
    return handler


def entry(severity: str = "Info", **variables: Any) -> LogEntry:
    return LogEntry(
        name=NAME,
        variables=variables or {"responseCode": 200, "url": "/productpage"},
        timestamp=WHEN,
        severity=severity,
    )


@run_async
async def test_info_names_the_adapter_and_its_templates():
    assert INFO.name == "stdio"
    assert INFO.templates == ("logentry", "metric")
    handler = await build({})  # build_handler checks both template methods exist
    # Conformance to the runtime's protocols, for a type checker.
    logs: LogEntryHandler = handler
    metrics: MetricHandler = handler
    assert logs is metrics
    await handler.close()


@run_async
async def test_log_entries_become_json_lines_on_stdout(capsys):
    handler = await build({"outputAsJson": True})
    await handler.handle_log_entry(
        [
            entry(
                latency=datetime.timedelta(microseconds=6577),
                sourceIp=bytes([10, 0, 0, 7]),
                responseCode=200,
                url="/productpage",
                mtls=False,
                responseTimestamp=WHEN,
            ),
            entry("ERROR", url="/ratings"),
        ]
    )
    await handler.flush()
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first == {
        "level": "info",
        "time": "2018-07-30T12:00:01.250000Z",
        "instance": NAME,
        "latency": "6.577ms",
        "mtls": False,
        "responseCode": 200,
        "responseTimestamp": "2018-07-30T12:00:01.250000Z",
        "sourceIp": "10.0.0.7",
        "url": "/productpage",
    }
    # Header first, then the variables sorted by name, as Istio writes them.
    assert list(first)[:4] == ["level", "time", "instance", "latency"]
    assert second["level"] == "error"
    assert second["url"] == "/ratings"
    await handler.close()


@run_async
async def test_a_file_stream_appends_json_lines_and_close_flushes(tmp_path: pathlib.Path):
    path = tmp_path / "access.log"
    path.write_text('{"earlier": true}\n')
    handler = await build({"logStream": "FILE", "outputPath": str(path)})
    await handler.handle_log_entry([entry(url=f"/{i}") for i in range(3)])
    await handler.handle_log_entry([entry(url="/3")])
    await handler.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"earlier": True}
    assert [line["url"] for line in lines[1:]] == ["/0", "/1", "/2", "/3"]


@run_async
async def test_a_rotated_file_stream(tmp_path: pathlib.Path):
    path = tmp_path / "access.log"
    handler = await build(
        {"logStream": "ROTATED_FILE", "outputPath": str(path), "maxRotatedFiles": 2}
    )
    await handler.handle_log_entry([entry(url="/r")])
    await handler.close()
    assert json.loads(path.read_text())["url"] == "/r"


@run_async
async def test_stderr_and_console_format(capsys):
    handler = await build({"logStream": "STDERR", "outputAsJson": False})
    await handler.handle_log_entry([entry(url="/x", responseCode=404)])
    await handler.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f'2018-07-30T12:00:01.250000Z\tinfo\t{NAME}\t{{"responseCode": 404, "url": "/x"}}\n'
    )


@run_async
async def test_severity_levels_and_output_level(capsys):
    handler = await build(
        {"severityLevels": {"notice": 1, "Debug": "INFO"}, "outputLevel": "WARNING"}
    )
    await handler.handle_log_entry(
        [
            entry("Info", n=1),  # INFO: below the output level
            entry("notice", n=2),  # mapped to WARNING
            entry("Debug", n=3),  # mapped to INFO
            entry("Error", n=4),  # the default map, case-insensitively
            entry("whatever", n=5),  # unknown: INFO
        ]
    )
    await handler.close()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["n"], line["level"]) for line in lines] == [(2, "warn"), (4, "error")]


@run_async
async def test_metrics_are_lines_at_the_metric_level(capsys):
    now = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    handler = await build({"metricLevel": "ERROR"})
    handler._clock = lambda: now
    await handler.handle_metric(
        [Metric(name="requestcount.istio-system", value=1, dimensions={"b": "y", "a": 2})]
    )
    await handler.close()
    (line,) = capsys.readouterr().out.splitlines()
    assert line == (
        '{"level":"error","time":"2020-01-02T03:04:05.000000Z",'
        '"instance":"requestcount.istio-system","value":1,"a":2,"b":"y"}'
    )


@run_async
async def test_metrics_below_the_output_level_are_skipped(capsys):
    handler = await build({"outputLevel": "ERROR"})
    await handler.handle_metric([Metric(name="m", value=1, dimensions={})])
    await handler.close()
    assert capsys.readouterr().out == ""


@run_async
async def test_an_entry_without_a_timestamp_gets_the_current_time(capsys):
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    handler = await build({})
    await handler.handle_log_entry([LogEntry(name="x", variables={})])
    await handler.close()
    line = json.loads(capsys.readouterr().out)
    written = datetime.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert written.replace(tzinfo=datetime.UTC) >= before
    assert line == {"level": "info", "time": line["time"], "instance": "x"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"logStream": "FILE"},
            "outputPath: need a valid output path when using a FILE or ROTATED_FILE log stream",
        ),
        (
            {"outputPath": "/tmp/x"},
            "outputPath: cannot specify an output path when using a STDOUT or STDERR log stream",
        ),
    ],
)
@run_async
async def test_build_refuses_invalid_params(params: dict[str, Any], expected: str):
    assert testing.config_errors(INFO, params) == [expected]
    builder = INFO.new_builder(testing.merged_params(INFO, params), {})
    with pytest.raises(ValueError, match="outputPath"):
        await builder.build(testing.new_env())


@run_async
async def test_a_file_that_cannot_be_opened_fails_the_build(tmp_path: pathlib.Path):
    params = {"logStream": "FILE", "outputPath": str(tmp_path / "no" / "x")}
    assert testing.config_errors(INFO, params) == []
    with pytest.raises(FileNotFoundError):
        await testing.build_handler(INFO, params)


@run_async
async def test_close_is_idempotent_and_refuses_later_lines():
    handler = await build({})
    await handler.close()
    await handler.close()
    with pytest.raises(RuntimeError, match="closed"):
        await handler.handle_log_entry([entry()])
