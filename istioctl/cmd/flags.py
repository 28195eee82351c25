"""Flag value types shared by command modules, spelled as Istio's (cobra's) flags take them:
`--use-kube=false`, `--remote=false`, `--failure-threshold Warning`."""

from __future__ import annotations

import argparse

LEVELS = ("Info", "Warning", "Error")


def boolean(text: str) -> bool:
    if text.lower() in ("true", "t", "1", "yes"):
        return True
    if text.lower() in ("false", "f", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")


def level(text: str) -> str:
    for name in LEVELS:
        if text.lower() == name.lower():
            return name
    raise argparse.ArgumentTypeError(
        f"{text!r} not a valid option, please choose from: {list(LEVELS)}"
    )


def duration(text: str) -> float:
    """Seconds, from a Go duration (`30s`, `1m30s`, `500ms`) or a plain number of seconds."""
    from pkg.cli import duration  # imported when a duration flag is given: the parser stays cheap

    return duration.flag_seconds(text)


def add_boolean(
    parser: argparse.ArgumentParser, *names: str, default: bool | None, help: str
) -> None:
    """`--name` alone is true; `--name=false` (or `--name false`) sets it explicitly."""
    parser.add_argument(
        *names, type=boolean, nargs="?", const=True, default=default, metavar="BOOL", help=help
    )
