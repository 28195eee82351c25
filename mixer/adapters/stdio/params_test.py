"""Parsing and validating the stdio handler's params."""

from __future__ import annotations

from typing import Any

import pytest

from mixer.adapters.stdio.params import DEFAULT_SEVERITY_LEVELS, Level, Options, Stream, parse


def ok(params: dict[str, Any]) -> Options:
    options, errors = parse(params)
    assert errors == []
    return options


def test_defaults_are_istios():
    options = ok({})
    assert options == Options()
    assert options.log_stream is Stream.STDOUT
    assert options.output_as_json is True
    assert options.output_level is Level.INFO
    assert options.metric_level is Level.INFO
    assert options.severity_levels == DEFAULT_SEVERITY_LEVELS


def test_every_field_in_either_spelling():
    camel = {
        "logStream": "ROTATED_FILE",
        "outputPath": "/var/log/x",
        "outputAsJson": False,
        "severityLevels": {"notice": 1.0, "Critical": "ERROR"},
        "outputLevel": "WARNING",
        "metricLevel": 2,
        "maxMegabytesBeforeRotation": 5.0,
        "maxDaysBeforeRotation": 2,
        "maxRotatedFiles": 3,
    }
    snake = {
        "log_stream": "ROTATED_FILE",
        "output_path": "/var/log/x",
        "output_as_json": False,
        "severity_levels": {"notice": 1.0, "Critical": "ERROR"},
        "output_level": "WARNING",
        "metric_level": 2,
        "max_megabytes_before_rotation": 5.0,
        "max_days_before_rotation": 2,
        "max_rotated_files": 3,
    }
    options = ok(camel)
    assert options == ok(snake)
    assert options.log_stream is Stream.ROTATED_FILE
    assert options.output_level is Level.WARNING
    assert options.metric_level is Level.ERROR
    assert options.severity_levels["notice"] is Level.WARNING
    assert options.severity_levels["info"] is Level.INFO  # the defaults stay
    assert (options.max_megabytes_before_rotation, options.max_days_before_rotation) == (5, 2)
    assert options.max_rotated_files == 3


def test_level_of_a_severity():
    options = ok({"severityLevels": {"Critical": "ERROR"}})
    assert options.level_of("Critical") is Level.ERROR
    assert options.level_of("WARN") is Level.WARNING
    assert options.level_of("Warning") is Level.WARNING  # case-insensitive fallback
    assert options.level_of("Info") is Level.INFO
    assert options.level_of("") is Level.INFO
    assert options.level_of("unheard-of") is Level.INFO
    assert Level.WARNING.label == "warn"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"logStream": "SYSLOG"},
            "logStream: 'SYSLOG' is not one of STDOUT, STDERR, FILE, ROTATED_FILE",
        ),
        (
            {"logStream": "ROTATED_FILE"},
            "outputPath: need a valid output path when using a FILE or ROTATED_FILE log stream",
        ),
        (
            {"logStream": "STDERR", "outputPath": "/x"},
            "outputPath: cannot specify an output path when using a STDOUT or STDERR log stream",
        ),
        ({"outputAsJson": "yes"}, "outputAsJson: must be true or false"),
        ({"severityLevels": ["info"]}, "severityLevels: must be a map of severity to level"),
        (
            {"severityLevels": {"x": "LOUD"}},
            "severityLevels.x: 'LOUD' is not a level: INFO, WARNING or ERROR (0, 1, 2)",
        ),
        ({"outputLevel": 3}, "outputLevel: 3 is not a level: INFO, WARNING or ERROR (0, 1, 2)"),
        ({"maxRotatedFiles": 0}, "maxRotatedFiles: 0 is not a positive whole number"),
        ({"maxRotatedFiles": float("inf")}, "maxRotatedFiles: inf is not a positive whole number"),
        ({"logstream": "STDOUT"}, "logstream: unknown field"),
    ],
)
def test_each_mistake_is_named_with_its_field(params: dict[str, Any], expected: str):
    assert [str(e) for e in parse(params)[1]] == [expected]


def test_params_must_be_a_map():
    assert [str(e) for e in parse([])[1]] == ["params: must be a map"]  # type: ignore[arg-type]
