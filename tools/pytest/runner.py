"""Runs one test file under pytest: the `main` of every py_pytest target.

Bazel starts this script with the test file (a runfiles path) as its argument; pytest then
collects and runs it exactly as a plain `pytest path/to/foo_test.py` would.
"""

import os
import sys

import pytest


def main(argv: list[str]) -> int:
    args = [
        "-p",
        "no:cacheprovider",  # the runfiles tree is read-only
        "--import-mode=importlib",
        "-q",
    ]
    # Bazel's XML report, so `bazel test` lists the test cases.
    xml = os.environ.get("XML_OUTPUT_FILE")
    if xml:
        args.append(f"--junitxml={xml}")
    return pytest.main(args + argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
