"""Durations on command lines, written as Go writes them (`24h`, `1h30m`, `90s`, `500ms`).

Every program of the mesh takes its duration flags through here, as Istio's take Go's
`time.Duration` flags. A bare number is also read, as seconds, since our earlier flags
accepted one, and `d` for days (Go has none; our CA's TTL flags took it). Negative durations
are refused: no flag of ours means "before now". durationpy does the arithmetic; the syntax
is checked here first, as it is laxer than Go (it reads `1h-5m` as 1h5m, `1y` as 365 days).
"""

from __future__ import annotations

import argparse
import datetime
import re

import durationpy

_BARE_SECONDS = re.compile(r"\d+(\.\d+)?")
_GO_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h|d))+")


def parse(text: str) -> datetime.timedelta:
    """The duration `text` names; ValueError saying what was wrong and what is expected."""
    text = text.strip()
    if _BARE_SECONDS.fullmatch(text):
        return datetime.timedelta(seconds=float(text))
    value = None
    if _GO_DURATION.fullmatch(text):
        try:
            value = durationpy.from_str(text)
        except (ValueError, durationpy.DurationError):
            value = None
    if value is None:
        raise ValueError(f"invalid duration {text!r}; want e.g. 24h, 1h30m, 90s, 500ms")
    return value


def seconds(text: str) -> float:
    return parse(text).total_seconds()


def flag_seconds(text: str) -> float:
    """An argparse `type=`: seconds, with argparse's own error for a bad value."""
    try:
        return seconds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
