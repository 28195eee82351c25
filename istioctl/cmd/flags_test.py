"""Flag values as Istio's istioctl takes them."""

from __future__ import annotations

import argparse

import pytest

from istioctl.cmd import flags


def test_booleans_levels_and_durations():
    assert [flags.boolean(v) for v in ("true", "T", "1", "false", "F", "0")] == [True] * 3 + [False] * 3  # fmt: skip
    assert [flags.level(v) for v in ("info", "WARNING", "Error")] == ["Info", "Warning", "Error"]
    assert [flags.duration(v) for v in ("30s", "1m30s", "500ms", "0", "1h")] == [30, 90, 0.5, 0, 3600]  # fmt: skip
    for bad, call in (("maybe", flags.boolean), ("fatal", flags.level), ("3x", flags.duration), ("1s2", flags.duration), ("2", flags.duration)):  # fmt: skip
        with pytest.raises(argparse.ArgumentTypeError):
            call(bad)


def test_add_boolean_takes_the_flag_alone_or_a_value():
    parser = argparse.ArgumentParser()
    flags.add_boolean(parser, "-k", "--use-kube", default=True, help="")
    assert parser.parse_args([]).use_kube is True
    assert parser.parse_args(["--use-kube=false"]).use_kube is False
    assert parser.parse_args(["-k"]).use_kube is True
    assert parser.parse_args(["-k=false"]).use_kube is False
