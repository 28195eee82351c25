"""The parser built for one command's group parses as the whole parser does."""

from __future__ import annotations

import argparse

import pytest

from istioctl import main


def commands_of(parser: argparse.ArgumentParser) -> set[str]:
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(subparsers.choices)


def test_the_table_lists_what_each_group_adds():
    listed = {name for _, names in main.COMMAND_GROUPS for name in names}
    assert commands_of(main.build_parser()) == listed
    for module, names in main.COMMAND_GROUPS:
        assert commands_of(main.build_parser(names[0])) == set(names), module


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "vs", "-n", "bookinfo", "-o", "yaml"],
        ["-n", "bookinfo", "--config-store", "http://s:1", "get", "dr", "reviews"],
        ["--context", "get", "get", "vs"],  # a flag's value is not the command
        ["-c", "k.yaml", "analyze", "-A", "--use-kube=false", "a.yaml"],
        ["x", "describe", "pod", "reviews-v1"],
        ["pc", "cluster", "reviews-v1", "--fqdn", "reviews"],
        ["version", "--remote=false"],
        ["d", "envoy", "p", "--browser=false"],
        ["bug-report", "--timeout", "3s"],
    ],
)
def test_one_group_parses_as_all(argv):
    whole = main.build_parser().parse_args(argv)
    alone = main.build_parser(main.command_of(argv)).parse_args(argv)
    assert vars(alone) == vars(whole)


def test_command_of_skips_global_flags_and_their_values():
    assert main.command_of(["-n", "x", "-i", "y", "get"]) == "get"
    assert main.command_of(["--namespace=x", "ps"]) == "ps"
    assert main.command_of(["--help"]) is None
    assert main.command_of([]) is None
