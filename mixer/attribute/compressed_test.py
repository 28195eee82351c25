import datetime
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.mixer.v1 import attributes_pb2, check_pb2, report_pb2
from mixer.attribute.bag import MAX_DURATION, Bag, same_value
from mixer.attribute.compressed import (
    AttributeDecodeError,
    decode,
    decode_check,
    decode_report,
    decode_report_deltas,
    encode,
    encode_report,
)
from mixer.attribute.dictionary import GLOBAL_INDEX, GLOBAL_WORDS

UTC = datetime.UTC
CA = attributes_pb2.CompressedAttributes
SM = attributes_pb2.StringMap
RR = report_pb2.ReportRequest
G = GLOBAL_INDEX  # word -> global index, for readable hand-built messages
MAPS = ("strings", "int64s", "doubles", "bools", "timestamps", "durations", "bytes", "string_maps")


def test_decode_hand_built_message():
    attrs = CA(
        words=["my.attr", "hello", "x-custom"],
        strings={G["source.name"]: -2, -1: G["GET"]},
        int64s={G["destination.port"]: 9080},
        doubles={G["request.size"]: 1.5},  # any name may carry any type on the wire
        bools={G["connection.mtls"]: True},
        timestamps={G["request.time"]: {"seconds": 1_700_000_000, "nanos": 123_456_789}},
        durations={G["response.duration"]: {"seconds": -1, "nanos": -500_000_999}},
        bytes={G["source.ip"]: b"\x7f\x00\x01\x02"},
        string_maps={
            G["request.headers"]: SM(entries={G[":path"]: -2, -3: G["'200'"]}),
            G["response.headers"]: SM(),
        },
    )
    bag = decode(attrs)
    assert bag.as_dict() == {
        "source.name": "hello",
        "my.attr": "GET",
        "destination.port": 9080,
        "request.size": 1.5,
        "connection.mtls": True,
        # Python keeps microseconds: the nanoseconds below one are dropped.
        "request.time": datetime.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC),
        "response.duration": -datetime.timedelta(seconds=1, microseconds=500_000),
        "source.ip": b"\x7f\x00\x01\x02",
        "request.headers": {":path": "hello", "x-custom": "'200'"},
        "response.headers": {},
    }
    assert type(bag.get("connection.mtls")[0]) is bool
    assert bag.get("request.time")[0].tzinfo is UTC


def test_decode_limits_global_words_to_the_callers_count():
    attrs = CA(strings={G["request.headers"]: G["source.ip"]})
    assert decode(attrs, global_word_count=16).as_dict() == {"request.headers": "source.ip"}
    with pytest.raises(
        AttributeDecodeError,
        match=r"^strings: attribute name: global word index 15 is out of range "
        r"\(caller uses 15 words\)$",
    ):
        decode(attrs, global_word_count=15)


def test_decode_with_a_custom_global_list():
    attrs = CA(words=["m"], strings={0: 1, -1: 0})
    assert decode(attrs, ["a", "b"]).as_dict() == {"a": "b", "m": "a"}


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        (
            CA(words=["a"], strings={222: 0}),
            "strings: attribute name: global word index 222 is out of range "
            "(caller uses 222 words)",
        ),
        (
            CA(words=["a"], int64s={-2: 1}),
            "int64s: attribute name: message word index -2 (words[1]) is out of range "
            "(message has 1 words)",
        ),
        (
            CA(words=["a"], strings={2: -3}),
            "strings[source.name]: value: message word index -3 (words[2]) is out of range "
            "(message has 1 words)",
        ),
        (
            CA(strings={2: 1000}),
            "strings[source.name]: value: global word index 1000 is out of range "
            "(caller uses 222 words)",
        ),
        (
            CA(bytes={-1: b""}),
            "bytes: attribute name: message word index -1 (words[0]) is out of range "
            "(message has 0 words)",
        ),
        (
            CA(string_maps={-1: SM()}),
            "string_maps: attribute name: message word index -1 (words[0]) is out of range",
        ),
        (
            CA(words=["k"], string_maps={15: SM(entries={-5: 0})}),
            "string_maps[request.headers]: entry key: message word index -5 (words[4]) "
            "is out of range (message has 1 words)",
        ),
        (
            CA(words=["k"], string_maps={15: SM(entries={-1: 400})}),
            "string_maps[request.headers]['k']: entry value: global word index 400 is out of "
            "range (caller uses 222 words)",
        ),
        (
            CA(words=["source.name"], string_maps={15: SM(entries={-1: 0, 2: 1})}),
            "string_maps[request.headers]: key 'source.name' appears twice (indexes ",
        ),
        (
            CA(strings={2: 0}, int64s={2: 5}),
            "attribute 'source.name' appears in both strings and int64s",
        ),
        (
            CA(bools={2: True}, string_maps={2: SM()}),
            "attribute 'source.name' appears in both bools and string_maps",
        ),
        (
            CA(words=["source.name"], strings={2: 0, -1: 1}),
            "attribute 'source.name' appears twice in strings (indexes 2 and -1)",
        ),
        (
            CA(words=["x"], durations={-1: {}}, timestamps={-1: {}}),
            "attribute 'x' appears in both timestamps and durations",
        ),
        (
            CA(timestamps={24: {"seconds": 1, "nanos": 1_000_000_000}}),
            "timestamps[request.time]: invalid timestamp: nanos 1000000000 outside [0, 999999999]",
        ),
        (
            CA(timestamps={24: {"seconds": 5, "nanos": -1}}),
            "timestamps[request.time]: invalid timestamp: nanos -1 outside [0, 999999999]",
        ),
        (
            CA(timestamps={24: {"seconds": 253_402_300_800}}),
            "timestamps[request.time]: invalid timestamp: seconds 253402300800 outside "
            "years 1..9999",
        ),
        (
            CA(timestamps={24: {"seconds": -62_135_596_801}}),
            "invalid timestamp: seconds -62135596801 outside years 1..9999",
        ),
        (
            CA(durations={29: {"seconds": 1, "nanos": -1}}),
            "durations[response.duration]: invalid duration: seconds 1 and nanos -1 differ in sign",
        ),
        (
            CA(durations={29: {"seconds": -1, "nanos": 1}}),
            "invalid duration: seconds -1 and nanos 1 differ in sign",
        ),
        (
            CA(durations={29: {"nanos": 1_000_000_000}}),
            "durations[response.duration]: invalid duration: nanos 1000000000 outside "
            "[-999999999, 999999999]",
        ),
        (
            CA(durations={29: {"seconds": 315_576_000_001}}),
            "invalid duration: seconds 315576000001 exceed +-10000 years",
        ),
    ],
)
def test_decode_errors(attrs, message):
    with pytest.raises(AttributeDecodeError) as info:
        decode(attrs)
    assert message in str(info.value)


def test_decode_refuses_a_newer_client_dictionary():
    with pytest.raises(AttributeDecodeError, match="mixer knows 222 words, caller knows 223"):
        decode(CA(), global_word_count=223)


def test_decode_extreme_but_valid_times():
    attrs = CA(
        timestamps={0: {"seconds": -62_135_596_800}, 1: {"seconds": 253_402_300_799}},
        durations={2: {"seconds": 315_576_000_000}, 3: {"seconds": -315_576_000_000}},
    )
    assert decode(attrs).as_dict() == {
        "source.ip": datetime.datetime(1, 1, 1, tzinfo=UTC),
        "source.port": datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        "source.name": MAX_DURATION,
        "source.uid": -MAX_DURATION,
    }


def test_encode_uses_global_indexes_and_deduplicated_message_words():
    attrs = encode(
        {
            "source.name": "'200'",  # the quoted global word
            "request.method": "200",  # the unquoted one, a different index
            "my.attr": "my.value",
            "other.attr": "my.value",
            "request.headers": {"x-custom": "my.value", ":path": "/"},
        }
    )
    assert list(attrs.words) == ["my.attr", "my.value", "other.attr", "x-custom", "/"]
    assert dict(attrs.strings) == {2: 94, G["request.method"]: G["200"], -1: -2, -3: -2}
    assert dict(attrs.string_maps[15].entries) == {-4: -2, G[":path"]: -5}


def test_encode_respects_the_global_word_count():
    attrs = encode({"source.name": "source.ip", "request.headers": {}}, global_word_count=3)
    assert list(attrs.words) == ["request.headers"]
    assert dict(attrs.strings) == {2: 0}
    assert list(attrs.string_maps) == [-1]
    nothing_global = encode({"source.name": "x"}, global_word_count=0)
    assert list(nothing_global.words) == ["source.name", "x"]
    assert dict(nothing_global.strings) == {-1: -2}


def test_encode_times():
    attrs = encode(
        {
            "request.time": datetime.datetime(1969, 12, 31, 23, 59, 59, 250_000, tzinfo=UTC),
            "response.duration": -datetime.timedelta(microseconds=1_500_001),
        }
    )
    ts = attrs.timestamps[G["request.time"]]
    assert (ts.seconds, ts.nanos) == (-1, 250_000_000)
    d = attrs.durations[G["response.duration"]]
    assert (d.seconds, d.nanos) == (-1, -500_001_000)


def test_encode_refuses_text_that_is_not_utf8():
    with pytest.raises(ValueError, match="is not valid UTF-8 text"):
        encode({"a": "\ud800"})


def test_decode_check_uses_the_requests_word_count():
    request = check_pb2.CheckRequest(
        attributes=CA(strings={G["request.headers"]: 0}), global_word_count=15
    )
    with pytest.raises(AttributeDecodeError, match="caller uses 15 words"):
        decode_check(request)
    request.global_word_count = 0  # not set: an old client, assumed to know our whole list
    assert decode_check(request).as_dict() == {"request.headers": "source.ip"}


def test_decode_report_applies_deltas_and_default_words():
    request = RR(
        default_words=["shared.attr", "v1", "v2"],
        global_word_count=len(GLOBAL_WORDS),
        attributes=[
            CA(strings={-1: -2, 2: G["GET"]}, int64s={G["response.code"]: 200}),
            CA(strings={-1: -3}),  # only what changed
            CA(words=["own.word"], strings={-1: G["POST"]}),  # its own dictionary
            CA(string_maps={15: SM(entries={G[":path"]: G["http"]})}),
            CA(int64s={G["response.code"]: 503}),
            CA(string_maps={15: SM(entries={G[":method"]: G["GET"]})}),  # replaces the map
        ],
    )
    first = {"shared.attr": "v1", "source.name": "GET", "response.code": 200}
    second = {**first, "shared.attr": "v2"}
    third = {**second, "own.word": "POST"}
    fourth = {**third, "request.headers": {":path": "http"}}
    fifth = {**fourth, "response.code": 503}
    sixth = {**fifth, "request.headers": {":method": "GET"}}
    want = [first, second, third, fourth, fifth, sixth]
    assert decode_report(request) == [Bag(b) for b in want]


def test_decode_report_independent_entries():
    request = RR(
        repeated_attributes_semantics=RR.INDEPENDENT_ENCODING,
        attributes=[CA(int64s={30: 200}), CA(int64s={27: 5})],
    )
    assert decode_report(request) == [Bag({"response.code": 200}), Bag({"response.size": 5})]


def test_decode_report_errors_name_the_entry():
    request = RR(default_words=["a"], attributes=[CA(strings={-1: -1}), CA(strings={-1: -2})])
    with pytest.raises(
        AttributeDecodeError,
        match=r"^attributes\[1\]: strings\[a\]: value: message word index -2 \(words\[1\]\) "
        r"is out of range \(message has 1 words\)$",
    ):
        decode_report(request)
    request.global_word_count = 999
    with pytest.raises(AttributeDecodeError, match="caller knows 999"):
        decode_report(request)


def test_encode_report_sends_only_changes():
    bags = [
        {"source.name": "a", "response.code": 200, "request.headers": {"k": "v"}},
        {"source.name": "a", "response.code": 404, "request.headers": {"k": "v"}},
        {"source.name": "a", "response.code": 404, "request.headers": {"k": "w"}, "x": True},
        {"source.name": "a", "response.code": 404, "request.headers": {"k": "w"}, "x": 1},
    ]
    request = encode_report(bags)
    assert request.repeated_attributes_semantics == RR.DELTA_ENCODING
    assert request.global_word_count == len(GLOBAL_WORDS)
    assert list(request.default_words) == ["a", "k", "v", "w", "x"]
    assert all(not entry.words for entry in request.attributes)
    assert len(request.attributes[0].strings) + len(request.attributes[0].int64s) == 2
    assert request.attributes[1] == CA(int64s={G["response.code"]: 404})
    assert request.attributes[2] == CA(
        string_maps={G["request.headers"]: SM(entries={-2: -4})}, bools={-5: True}
    )
    assert request.attributes[3] == CA(int64s={-5: 1})  # True -> 1 is a change of type
    assert decode_report(request) == [Bag(b) for b in bags]


def test_encode_report_falls_back_to_independent_entries_on_removal():
    bags = [{"a": "1", "b": "2"}, {"a": "1"}]
    request = encode_report(bags, global_word_count=100)
    assert request.repeated_attributes_semantics == RR.INDEPENDENT_ENCODING
    assert request.global_word_count == 100
    assert len(request.attributes[1].strings) == 1
    assert decode_report(request) == [Bag(b) for b in bags]
    assert decode_report(encode_report([])) == []


def test_decode_report_deltas_say_what_each_entry_set_anew():
    bags = [
        {"source.name": "a", "response.code": 200, "request.headers": {"k": "v"}},
        {"source.name": "a", "response.code": 404, "request.headers": {"k": "v"}},
        {"source.name": "a", "response.code": 404, "request.headers": {"k": "w"}, "x": True},
    ]
    decoded, deltas = decode_report_deltas(encode_report(bags))
    assert decoded == [Bag(b) for b in bags]
    assert deltas[0] is None  # the first entry stands alone
    assert dict(deltas[1]) == {"response.code": 404}
    assert dict(deltas[2]) == {"request.headers": {"k": "w"}, "x": True}
    # What an entry left alone is the previous bag's very value.
    assert decoded[2].get("source.name")[0] is decoded[0].get("source.name")[0]
    assert decoded[1].get("request.headers")[0] is decoded[0].get("request.headers")[0]
    independent = encode_report([{"a": "1", "b": "2"}, {"a": "1"}])
    assert decode_report_deltas(independent)[1] == [None, None]


# --- properties -----------------------------------------------------------------------------

texts = st.one_of(st.sampled_from(GLOBAL_WORDS), st.text(max_size=12))
values = st.one_of(
    texts,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),  # NaN and infinities included
    st.booleans(),
    st.binary(max_size=16),
    st.datetimes(timezones=st.just(UTC)),
    st.timedeltas(min_value=-MAX_DURATION, max_value=MAX_DURATION),
    st.dictionaries(texts, texts, max_size=4),
)
bags = st.dictionaries(texts, values, max_size=12).map(Bag)
word_counts = st.one_of(st.none(), st.integers(0, len(GLOBAL_WORDS)))


def over_the_wire(message):
    return type(message).FromString(message.SerializeToString())


@settings(database=None, deadline=None, max_examples=300)
@given(bags, word_counts)
def test_round_trip(bag, count):
    attrs = over_the_wire(encode(bag, global_word_count=count))
    assert decode(attrs, global_word_count=count) == bag
    assert len(set(attrs.words)) == len(attrs.words)
    usable = len(GLOBAL_WORDS) if count is None else count
    assert all(index < usable for index in attrs.strings)


@st.composite
def evolving_bags(draw):
    """Bags as a proxy reports them: mostly the same attributes, some values changing."""
    current = draw(st.dictionaries(texts, values, max_size=8))
    out = [Bag(current)]
    for _ in range(draw(st.integers(0, 6))):
        current = {**current, **draw(st.dictionaries(texts, values, max_size=3))}
        if current and draw(st.integers(0, 9)) == 0:  # now and then an attribute goes away
            current.pop(draw(st.sampled_from(sorted(current))))
        out.append(Bag(current))
    return out


@settings(database=None, deadline=None, max_examples=200)
@given(st.one_of(evolving_bags(), st.lists(bags, max_size=5)), word_counts)
def test_report_round_trip(bag_list, count):
    request = over_the_wire(encode_report(bag_list, global_word_count=count))
    assert decode_report(request) == bag_list
    if request.repeated_attributes_semantics == RR.DELTA_ENCODING:
        for entry, previous, bag in zip(
            request.attributes[1:], bag_list, bag_list[1:], strict=False
        ):
            changed = [n for n in bag.names() if not same_value(previous.get(n)[0], bag.get(n)[0])]
            assert sum(len(getattr(entry, field)) for field in MAPS) == len(changed)
    else:
        assert any(not a.names() <= b.names() for a, b in itertools.pairwise(bag_list))
