"""Fuzzing mixs' request decoder: whatever the bytes, a Check or Report request decodes to
attribute bags or is refused with a ValueError (the INVALID_ARGUMENT answer), nothing else.

The decoder is what a Check or Report goes through before any policy runs: the bytes parsed
as the request message (pkg/grpcserver), the compressed attributes decoded against the
global dictionary (mixer/attribute/compressed), their types checked against Istio's
vocabulary (attribute_types). What decodes must also encode back to the same bag.

The property (`check_check_bytes`, `check_report_bytes`) is shared by the bounded run in
`make test` (request_fuzz_test.py, hypothesis) and by the long run of this module under
atheris, which mutates encoded requests with coverage guidance:

    PYTHONPATH=. .venv/bin/python -m mixer.server.request_fuzz -atheris_runs=200000

(any libFuzzer flag works; the corpus grows in run/fuzz/mixer-request/). libFuzzer prints the
inputs it ran (`#N DONE`); a crash prints its traceback, is saved as crash-<sha1> and exits
non-zero.
"""

from __future__ import annotations

import datetime
import pathlib
import sys

from api.mixer.v1 import check_pb2, report_pb2
from mixer.attribute.bag import Bag, same_value
from mixer.attribute.compressed import decode, decode_check, decode_report, encode
from mixer.server.attribute_types import type_errors
from mixer.server.server import standard_types
from pkg.grpcserver.requests import parse_request

TYPES = standard_types()

SAMPLE = {
    "source.labels": {"app": "reviews", "version": "v3"},
    "destination.labels": {"app": "ratings", "version": "v1"},
    "destination.namespace": "default",
    "request.path": "/ratings/0",
    "request.size": 120,
    "response.code": 200,
    "response.duration": datetime.timedelta(milliseconds=12),
    "request.time": datetime.datetime(2026, 11, 21, tzinfo=datetime.UTC),
    "connection.mtls": True,
    "source.ip": b"\x0a\x00\x00\x01",
}


def seeds() -> list[bytes]:
    """Real requests to start from: a Check and a Report as a proxy would send them."""
    check = check_pb2.CheckRequest(attributes=encode(SAMPLE), deduplication_id="seed")
    check.quotas["requestcount"].amount = 1
    report = report_pb2.ReportRequest()
    report.attributes.add().CopyFrom(encode(SAMPLE))
    return [check.SerializeToString(), report.SerializeToString()]


def check_check_bytes(data: bytes) -> Bag | None:
    """Decodes `data` as a Check; fails (AssertionError or the crash) if the decoder misbehaves."""
    try:
        request = parse_request(check_pb2.CheckRequest, data)
        bag = decode_check(request)
    except ValueError as error:
        assert str(error), "a refusal must say why"
        return None
    _check_accepted(bag)
    return bag


def check_report_bytes(data: bytes) -> list[Bag] | None:
    """As check_check_bytes, for a Report batch."""
    try:
        request = parse_request(report_pb2.ReportRequest, data)
        bags = decode_report(request)
    except ValueError as error:
        assert str(error), "a refusal must say why"
        return None
    for bag in bags:
        _check_accepted(bag)
    return bags


def _check_accepted(bag: Bag) -> None:
    for problem in type_errors(bag.items(), TYPES):  # refused as mixs refuses it, not raised
        assert problem
    again = decode(encode(bag))
    assert set(again.names()) == set(bag.names())
    for name, value in bag.items():
        found, present = again.get(name)
        assert present, (name, value)
        assert same_value(found, value), (name, value, found)


def _one_input(data: bytes) -> None:
    if not data:
        return
    # The first byte picks the method, so one corpus covers both.
    if data[0] % 2:
        check_report_bytes(data[1:])
    else:
        check_check_bytes(data[1:])


def main(argv: list[str]) -> None:
    import atheris  # only the long run needs it

    atheris.instrument_all()
    corpus = pathlib.Path("run/fuzz/mixer-request")
    corpus.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(seeds()):
        (corpus / f"seed-{number}").write_bytes(bytes([number]) + seed)
    atheris.Setup([*argv, str(corpus)], _one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
