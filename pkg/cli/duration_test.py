import argparse
import datetime

import pytest

from pkg.cli import duration

H = datetime.timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", 24 * H),
        ("2160h", 90 * 24 * H),
        ("1h30m", 1.5 * H),
        ("90s", datetime.timedelta(seconds=90)),
        ("2.5s", datetime.timedelta(seconds=2.5)),
        ("500ms", datetime.timedelta(milliseconds=500)),
        ("0s", datetime.timedelta()),
        ("0", datetime.timedelta()),
        ("1.5h", 1.5 * H),
        ("250us", datetime.timedelta(microseconds=250)),
        (" 5s ", datetime.timedelta(seconds=5)),
    ],
)
def test_go_durations_and_bare_seconds(text, expected):
    assert duration.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "h", "s", "5", "3600", "5 s", "24 hours", "1y", "90d", "-5h", "+5s", "1h-5m", "5sx"],
)
def test_what_is_not_a_duration_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match=r"invalid duration .*; want a Go duration such as 24h"):
        duration.parse(text)


def test_flag_seconds_is_an_argparse_type():
    parser = argparse.ArgumentParser()
    parser.add_argument("--drain", type=duration.flag_seconds)
    assert parser.parse_args(["--drain", "1m30s"]).drain == 90.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--drain", "soon"])
