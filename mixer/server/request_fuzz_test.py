"""Bounded fuzzing of mixs' request decoder (hypothesis): any bytes decode or get a ValueError.

Three generators: random bytes; real requests with bytes cut, flipped or inserted; and
CompressedAttributes built field by field with indexes around the dictionaries' edges, odd
words, timestamps and durations out of range, names repeated across maps, delta-encoded
Report batches. `make test` runs the "ci" profile (fixed examples, a few seconds); a longer,
random run:

    HYPOTHESIS_PROFILE=fuzz-long PYTHONPATH=. .venv/bin/pytest mixer/server/request_fuzz_test.py \
        --hypothesis-show-statistics
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.mixer.v1 import attributes_pb2, check_pb2, report_pb2
from mixer.attribute.dictionary import GLOBAL_WORDS
from mixer.server import request_fuzz
from pkg.testing.fuzz import bounded

FUZZ = bounded(300)

SEEDS = request_fuzz.seeds()
_COUNT = len(GLOBAL_WORDS)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes):
    request_fuzz.check_check_bytes(data)
    request_fuzz.check_report_bytes(data)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        match draw(st.sampled_from(["cut", "flip", "insert"])):
            case "cut":
                del data[at:]
            case "flip" if data:
                data[at] ^= 1 << draw(st.integers(0, 7))
            case _:
                data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@FUZZ
@given(_mutated())
def test_real_requests_mutated(data: bytes):
    request_fuzz.check_check_bytes(data)
    request_fuzz.check_report_bytes(data)


# Indexes near every edge: the last global word, one past it, the message's words (negative).
_INDEXES = st.one_of(
    st.integers(-6, 6),
    st.integers(_COUNT - 3, _COUNT + 3),
    st.sampled_from([-(2**31), 2**31 - 1]),
)
_WORDS = st.lists(
    st.one_of(st.text(max_size=8), st.sampled_from(["", "\x00", "source.ip", "a" * 300])),
    max_size=5,
)
_SECONDS = st.one_of(st.integers(-(2**40), 2**40), st.sampled_from([-62_135_596_801, 0]))
_NANOS = st.integers(-(2**31), 2**31 - 1)


@st.composite
def _attributes(draw: st.DrawFn) -> attributes_pb2.CompressedAttributes:
    attrs = attributes_pb2.CompressedAttributes()
    attrs.words.extend(draw(_WORDS))
    for name in draw(st.lists(_INDEXES, max_size=3)):
        attrs.strings[name] = draw(_INDEXES)
    for name in draw(st.lists(_INDEXES, max_size=2)):
        attrs.int64s[name] = draw(st.integers(-(2**63), 2**63 - 1))
    for name in draw(st.lists(_INDEXES, max_size=2)):
        attrs.doubles[name] = draw(st.floats(allow_nan=True))
    for name in draw(st.lists(_INDEXES, max_size=1)):
        attrs.bools[name] = draw(st.booleans())
    for name in draw(st.lists(_INDEXES, max_size=2)):
        attrs.timestamps[name].seconds = draw(_SECONDS)
        attrs.timestamps[name].nanos = draw(_NANOS)
    for name in draw(st.lists(_INDEXES, max_size=2)):
        attrs.durations[name].seconds = draw(_SECONDS)
        attrs.durations[name].nanos = draw(_NANOS)
    for name in draw(st.lists(_INDEXES, max_size=1)):
        attrs.bytes[name] = draw(st.binary(max_size=8))
    for name in draw(st.lists(_INDEXES, max_size=2)):
        entries = attrs.string_maps[name].entries
        for key in draw(st.lists(_INDEXES, max_size=3)):
            entries[key] = draw(_INDEXES)
    return attrs


@FUZZ
@given(_attributes(), st.integers(0, _COUNT + 5))
def test_checks_built_field_by_field(attrs, global_word_count: int):
    request = check_pb2.CheckRequest(attributes=attrs, global_word_count=global_word_count)
    request_fuzz.check_check_bytes(request.SerializeToString())


@FUZZ
@given(st.lists(_attributes(), max_size=4), _WORDS, st.booleans(), st.integers(0, _COUNT + 5))
def test_report_batches_built_field_by_field(batch, default_words, delta, global_word_count):
    request = report_pb2.ReportRequest(global_word_count=global_word_count)
    request.repeated_attributes_semantics = (
        report_pb2.ReportRequest.DELTA_ENCODING
        if delta
        else report_pb2.ReportRequest.INDEPENDENT_ENCODING
    )
    for attrs in batch:
        request.attributes.add().CopyFrom(attrs)
    request.default_words.extend(default_words)
    request_fuzz.check_report_bytes(request.SerializeToString())


def test_the_seeds_decode():
    assert request_fuzz.check_check_bytes(SEEDS[0]) is not None
    assert request_fuzz.check_report_bytes(SEEDS[1]) is not None
    assert request_fuzz.check_check_bytes(b"\xff\xff") is None
