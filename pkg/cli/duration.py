"""Durations on command lines, written as Go writes them (`24h`, `1h30m`, `90s`, `500ms`).

Every program of the mesh takes its duration flags through here, as Istio's take Go's
`time.Duration` flags, with Go's syntax: units ns, us (µs), ms, s, m, h; no bare number but
`0`; no days (a TTL of 90 days is `2160h`, as Citadel's flags say it). Negative durations are
refused: no flag of ours means "before now". durationpy does the arithmetic; the syntax is
checked here first, as durationpy is laxer than Go (it reads `1h-5m` as 1h5m, `1y`, `2d`).
"""

from __future__ import annotations

import argparse
import datetime
import re

import durationpy

_GO_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")


def parse(text: str) -> datetime.timedelta:
    """The duration `text` names; ValueError saying what was wrong and what is expected."""
    text = text.strip()
    if text == "0":
        return datetime.timedelta()
    value = None
    if _GO_DURATION.fullmatch(text):
        try:
            value = durationpy.from_str(text)
        except (ValueError, durationpy.DurationError):
            value = None
    if value is None:
        raise ValueError(
            f"invalid duration {text!r}; want a Go duration such as 24h, 1h30m, 90s, 500ms"
        )
    return value


def seconds(text: str) -> float:
    return parse(text).total_seconds()


def flag_seconds(text: str) -> float:
    """An argparse `type=`: seconds, with argparse's own error for a bad value."""
    try:
        return seconds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
