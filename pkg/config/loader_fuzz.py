"""Fuzzing the loader: whatever the input, it returns resources or raises LoadError, nothing else.

The property (`check_text`, `check_object`) is shared by the bounded run in `make test`
(loader_fuzz_test.py, hypothesis) and by the long run of this module under atheris, which
mutates the bytes of real documents with coverage guidance:

    PYTHONPATH=. .venv/bin/python -m pkg.config.loader_fuzz -atheris_runs=200000 -max_len=8192

(any libFuzzer flag works; `-max_total_time=600` bounds it by time instead). The corpus grows
in run/fuzz/loader/, seeded with every sample YAML. libFuzzer prints the inputs it ran
(`#N DONE`); on a crash it prints the traceback, saves the input as crash-<sha1> and exits
non-zero.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

from pkg.config import loader
from pkg.config.resource import Resource

SAMPLES = pathlib.Path(__file__).parents[2] / "samples"


def seeds() -> list[str]:
    """Real documents to start from: every sample YAML of the repository."""
    return [p.read_text() for p in sorted(SAMPLES.rglob("*.yaml"))]


def check_text(text: str) -> list[Resource] | None:
    """Loads `text`; fails (raises AssertionError or the crash itself) if the loader misbehaves."""
    try:
        resources = loader.load_text(text, source="fuzz.yaml", warnings=[])
    except loader.LoadError as error:
        _check_refusal(error)
        return None
    for resource in resources:
        _check_round_trip(resource)
    return resources


def check_object(document: Any) -> Resource | None:
    """As check_text, for an already decoded document (a JSON request body)."""
    try:
        resource = loader.load_object(document, source="<request>", warnings=[])
    except loader.LoadError as error:
        _check_refusal(error)
        return None
    _check_round_trip(resource)
    return resource


def _check_refusal(error: loader.LoadError) -> None:
    assert error.errors, "a LoadError must say what was refused"
    for document in error.errors:
        assert document.problems, f"{document.source}: document {document.document} has no reason"
        for problem in document.problems:
            assert problem.message, "every problem has a reason"
    str(error)  # the message itself must be printable


def _check_round_trip(resource: Resource) -> None:
    """What was accepted prints as YAML that loads back to the very same spec."""
    again = loader.load_text(resource.to_yaml(), source="round-trip.yaml")
    assert [r.spec for r in again] == [resource.spec], resource.to_yaml()


def _one_input(data: bytes) -> None:
    check_text(data.decode("utf-8", errors="replace"))


def main(argv: list[str]) -> None:
    import atheris  # only the long run needs it

    atheris.instrument_all()  # the loader's modules are imported already: instrument them
    corpus = pathlib.Path("run/fuzz/loader")
    corpus.mkdir(parents=True, exist_ok=True)
    for number, text in enumerate(seeds()):
        (corpus / f"seed-{number:03d}.yaml").write_text(text)
    atheris.Setup([*argv, str(corpus)], _one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
