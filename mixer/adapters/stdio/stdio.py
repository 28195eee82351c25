"""The stdio adapter: log entries (and, if routed here, metrics) as lines on stdout, stderr
or a file, one JSON object per line by default, as Istio's stdio adapter writes them.

A log entry's level comes from its severity through `severityLevels` (unknown severities
are INFO); metrics are written at `metricLevel`; lines below `outputLevel` are skipped.
Writing happens off the event loop (see sink.py): the handler encodes, queues and returns.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mixer.adapter.api import AdapterInfo, ConfigError, Env
from mixer.adapters.stdio.encoding import LineEncoder, encode_line
from mixer.adapters.stdio.params import Level, Options, Stream, parse
from mixer.adapters.stdio.sink import FileSink, LineWriter, RotatingFileSink, Sink, StreamSink
from mixer.template.templates import LogEntry, Metric

Clock = Callable[[], datetime.datetime]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class StdioHandler:
    def __init__(self, *, options: Options, writer: LineWriter, clock: Clock = _utc_now) -> None:
        self._options = options
        self._writer = writer
        self._clock = clock
        # Per log entry instance, as each has its own variables (used on the event loop only).
        self._encoders: dict[str, LineEncoder] = {}

    @property
    def writer(self) -> LineWriter:
        return self._writer

    async def handle_log_entry(self, instances: Sequence[LogEntry]) -> None:
        options = self._options
        encoders = self._encoders
        lines: list[str] = []
        for instance in instances:
            level = options.level_of(instance.severity)
            if level < options.output_level:
                continue
            encoder = encoders.get(instance.name)
            if encoder is None:
                encoder = encoders[instance.name] = LineEncoder(as_json=options.output_as_json)
            lines.append(
                encoder.encode(
                    level=level.label,
                    moment=instance.timestamp or self._clock(),
                    instance=instance.name,
                    variables=instance.variables,
                )
            )
        if lines:
            self._writer.put(lines)

    async def handle_metric(self, instances: Sequence[Metric]) -> None:
        options = self._options
        if options.metric_level < options.output_level or not instances:
            return
        now = self._clock()
        self._writer.put(
            [
                encode_line(
                    level=options.metric_level.label,
                    moment=now,
                    instance=instance.name,
                    fields=[("value", instance.value), *sorted(instance.dimensions.items())],
                    as_json=options.output_as_json,
                )
                for instance in instances
            ]
        )

    async def flush(self) -> None:
        """Wait until every line handled so far is written."""
        await self._writer.flush()

    async def close(self) -> None:
        await self._writer.close()


class StdioBuilder:
    def __init__(self, params: Mapping[str, Any], instances: Mapping[str, Sequence[str]]) -> None:
        del instances  # every logentry and metric instance is written the same way
        self._options, self._errors = parse(params)

    @property
    def options(self) -> Options:
        return self._options

    def validate(self) -> list[ConfigError]:
        return list(self._errors)

    async def build(self, env: Env) -> StdioHandler:
        if self._errors:
            raise ValueError("; ".join(str(e) for e in self._errors))
        # Opening a file may touch a slow disk: not on the event loop either.
        sink = await asyncio.to_thread(_open_sink, self._options)
        where = self._options.output_path or self._options.log_stream.value.lower()
        writer = LineWriter(sink, logger=env.logger, name=where)
        writer.start()
        return StdioHandler(options=self._options, writer=writer)


def _open_sink(options: Options) -> Sink:
    match options.log_stream:
        case Stream.STDOUT:
            return StreamSink("stdout")
        case Stream.STDERR:
            return StreamSink("stderr")
        case Stream.FILE:
            return FileSink(options.output_path)
        case Stream.ROTATED_FILE:
            return RotatingFileSink(
                options.output_path,
                max_bytes=options.max_megabytes_before_rotation * 1024 * 1024,
                max_files=options.max_rotated_files,
                max_age=options.max_days_before_rotation * 86_400.0,
            )


def _new_builder(params: Mapping[str, Any], instances: Mapping[str, Sequence[str]]) -> StdioBuilder:
    return StdioBuilder(params, instances)


INFO = AdapterInfo(
    name="stdio",
    description="Writes logs and metrics to a standard I/O stream or a file",
    templates=("logentry", "metric"),
    new_builder=_new_builder,
    default_params={
        "logStream": Stream.STDOUT.value,
        "metricLevel": Level.INFO.name,
        "outputLevel": Level.INFO.name,
        "outputAsJson": True,
        "maxDaysBeforeRotation": 30,
        "maxMegabytesBeforeRotation": 100,
        "maxRotatedFiles": 1000,
    },
)
