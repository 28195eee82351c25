"""The stdio handler's params (Istio's adapter.stdio.config.Params) as an `Options` record.

Params come from the handler resource's `params` Struct as plain Python (numbers are
floats), in either spelling jsonpb accepts (`logStream` or `log_stream`). Levels may be
written by name (`INFO`) or number (`0`), as Istio's own samples do (`info: 0`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Mapping
from typing import Any

from mixer.adapter.api import ConfigError


class Stream(enum.Enum):
    STDOUT = "STDOUT"
    STDERR = "STDERR"
    FILE = "FILE"
    ROTATED_FILE = "ROTATED_FILE"


class Level(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2

    @property
    def label(self) -> str:
        """How zap's lowercase level encoder writes it."""
        return ("info", "warn", "error")[self]


# Istio's default severity map; a handler's own entries are added to it.
DEFAULT_SEVERITY_LEVELS: Mapping[str, Level] = {
    **dict.fromkeys(("INFORMATIONAL", "informational", "INFO", "info"), Level.INFO),
    **dict.fromkeys(("WARNING", "warning", "WARN", "warn"), Level.WARNING),
    **dict.fromkeys(("ERROR", "error", "ERR", "err", "FATAL", "fatal"), Level.ERROR),
}

_FIELDS = {
    "logStream",
    "outputPath",
    "outputAsJson",
    "severityLevels",
    "outputLevel",
    "metricLevel",
    "maxMegabytesBeforeRotation",
    "maxDaysBeforeRotation",
    "maxRotatedFiles",
}


@dataclasses.dataclass(frozen=True)
class Options:
    log_stream: Stream = Stream.STDOUT
    output_path: str = ""
    output_as_json: bool = True
    severity_levels: Mapping[str, Level] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_LEVELS)
    )
    output_level: Level = Level.INFO  # entries below this level are not written
    metric_level: Level = Level.INFO  # the level metric lines are written at
    max_megabytes_before_rotation: int = 100
    max_days_before_rotation: int = 30
    max_rotated_files: int = 1000

    def level_of(self, severity: str) -> Level:
        """The level of a log entry's severity; unknown severities are INFO, as in Istio."""
        level = self.severity_levels.get(severity)
        if level is None:
            level = self.severity_levels.get(severity.lower(), Level.INFO)
        return level


def parse(params: Mapping[str, Any]) -> tuple[Options, list[ConfigError]]:
    """The options of a handler's params, and everything wrong with them."""
    errors: list[ConfigError] = []
    if not isinstance(params, Mapping):
        return Options(), [ConfigError("params", "must be a map")]
    allowed = _FIELDS | {_snake(f) for f in _FIELDS}
    errors.extend(ConfigError(str(k), "unknown field") for k in params if k not in allowed)

    stream = _enum(Stream, _field(params, "logStream"), "logStream", Stream.STDOUT, errors)
    path = _field(params, "outputPath") or ""
    if not isinstance(path, str):
        errors.append(ConfigError("outputPath", "must be a string"))
        path = ""
    if stream in (Stream.STDOUT, Stream.STDERR) and path:
        errors.append(
            ConfigError(
                "outputPath",
                "cannot specify an output path when using a STDOUT or STDERR log stream",
            )
        )
    if stream in (Stream.FILE, Stream.ROTATED_FILE) and not path:
        errors.append(
            ConfigError(
                "outputPath",
                "need a valid output path when using a FILE or ROTATED_FILE log stream",
            )
        )

    as_json = _field(params, "outputAsJson")
    if as_json is None:
        as_json = True
    elif not isinstance(as_json, bool):
        errors.append(ConfigError("outputAsJson", "must be true or false"))
        as_json = True

    severity_levels = dict(DEFAULT_SEVERITY_LEVELS)
    raw_levels = _field(params, "severityLevels") or {}
    if not isinstance(raw_levels, Mapping):
        errors.append(ConfigError("severityLevels", "must be a map of severity to level"))
        raw_levels = {}
    for severity, raw in raw_levels.items():
        level = _level(raw, f"severityLevels.{severity}", errors)
        if level is not None:
            severity_levels[str(severity)] = level

    options = Options(
        log_stream=stream,
        output_path=path,
        output_as_json=as_json,
        severity_levels=severity_levels,
        output_level=_level_or_info(params, "outputLevel", errors),
        metric_level=_level_or_info(params, "metricLevel", errors),
        max_megabytes_before_rotation=_positive(params, "maxMegabytesBeforeRotation", 100, errors),
        max_days_before_rotation=_positive(params, "maxDaysBeforeRotation", 30, errors),
        max_rotated_files=_positive(params, "maxRotatedFiles", 1000, errors),
    )
    return options, errors


def _level_or_info(params: Mapping[str, Any], name: str, errors: list[ConfigError]) -> Level:
    level = _level(_field(params, name), name, errors)
    return Level.INFO if level is None else level


def _level(raw: Any, path: str, errors: list[ConfigError]) -> Level | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw in Level.__members__:
        return Level[raw]
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw in (0, 1, 2):
        return Level(int(raw))
    errors.append(ConfigError(path, f"{raw!r} is not a level: INFO, WARNING or ERROR (0, 1, 2)"))
    return None


def _enum(
    kind: type[Stream], raw: Any, path: str, default: Stream, errors: list[ConfigError]
) -> Stream:
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        names = ", ".join(m.value for m in kind)
        errors.append(ConfigError(path, f"{raw!r} is not one of {names}"))
        return default


def _positive(params: Mapping[str, Any], name: str, default: int, errors: list[ConfigError]) -> int:
    raw = _field(params, name)
    if raw is None:
        return default
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or not math.isfinite(raw)
        or raw != int(raw)
        or raw <= 0
    ):
        errors.append(ConfigError(name, f"{raw!r} is not a positive whole number"))
        return default
    return int(raw)


def _field(data: Mapping[str, Any], camel: str) -> Any:
    if camel in data:
        return data[camel]
    return data.get(_snake(camel))


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()
