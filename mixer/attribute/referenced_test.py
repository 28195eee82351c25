import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.mixer.v1 import check_pb2
from mixer.attribute.dictionary import GLOBAL_WORDS, AttributeDecodeError
from mixer.attribute.referenced import (
    ABSENCE,
    EXACT,
    REGEX,
    ConflictingReferencesError,
    Match,
    References,
    merge_references,
)

RA = check_pb2.ReferencedAttributes


def test_record_deduplicates_and_refuses_conflicts():
    refs = References()
    refs.record("a", None, EXACT)
    refs.record("a", None, EXACT)
    refs.record("a", "k", ABSENCE)  # a key of the map is a different reference
    assert len(refs) == 2
    with pytest.raises(ConflictingReferencesError, match="ABSENCE a conflicts with EXACT a"):
        refs.record("a", None, ABSENCE)
    with pytest.raises(ConflictingReferencesError, match=r"EXACT a\['k'\] conflicts"):
        refs.record("a", "k", EXACT)


def test_merge_references_keeps_first_seen_order():
    one = References([Match("a", EXACT), Match("b", ABSENCE)])
    two = References([Match("c", EXACT, "k"), Match("a", EXACT)])
    merged = merge_references(one, two)
    assert list(merged) == [Match("a", EXACT), Match("b", ABSENCE), Match("c", EXACT, "k")]
    assert len(one) == 2  # inputs untouched
    with pytest.raises(ConflictingReferencesError):
        merge_references(one, References([Match("b", EXACT)]))


def test_from_proto_decodes_global_and_message_words():
    proto = RA(
        words=["my.attr", "x-key"],
        attribute_matches=[
            RA.AttributeMatch(name=2, condition=RA.EXACT),
            RA.AttributeMatch(name=-1, condition=RA.ABSENCE),
            RA.AttributeMatch(name=15, map_key=-2, condition=RA.EXACT),
            RA.AttributeMatch(name=15, condition=RA.REGEX, regex="^x-"),
        ],
    )
    assert list(References.from_proto(proto)) == [
        Match("source.name", EXACT),
        Match("my.attr", ABSENCE),
        Match("request.headers", EXACT, "x-key"),
        Match("request.headers", REGEX, None, "^x-"),
    ]


@pytest.mark.parametrize(
    ("match", "message"),
    [
        (
            RA.AttributeMatch(name=-2, condition=RA.EXACT),
            r"attribute_matches\[1\].name: message word index -2 \(words\[1\]\) is out of range "
            r"\(message has 1 words\)",
        ),
        (
            RA.AttributeMatch(name=500, condition=RA.EXACT),
            r"attribute_matches\[1\].name: global word index 500 is out of range "
            r"\(caller uses 222 words\)",
        ),
        (
            RA.AttributeMatch(name=15, map_key=-9, condition=RA.EXACT),
            r"attribute_matches\[1\].map_key \(request.headers\): message word index -9",
        ),
        (
            RA.AttributeMatch(name=15, condition=RA.CONDITION_UNSPECIFIED),
            r"attribute_matches\[1\] \(request.headers\): invalid condition 0",
        ),
        (
            RA.AttributeMatch(name=-1, condition=RA.ABSENCE),
            r"attribute_matches\[1\]: ABSENCE w conflicts with EXACT w",
        ),
    ],
)
def test_from_proto_errors(match, message):
    proto = RA(words=["w"], attribute_matches=[RA.AttributeMatch(name=-1, condition=RA.EXACT)])
    proto.attribute_matches.append(match)
    with pytest.raises(AttributeDecodeError, match=message):
        References.from_proto(proto)


words = st.one_of(st.sampled_from(GLOBAL_WORDS), st.text(max_size=12))
matches = st.builds(
    Match,
    name=words,
    condition=st.sampled_from([EXACT, ABSENCE]),
    map_key=st.one_of(st.none(), words),
)


@settings(database=None, deadline=None)
@given(
    st.lists(matches, max_size=12, unique_by=lambda m: (m.name, m.map_key)),
    st.one_of(st.none(), st.integers(0, len(GLOBAL_WORDS))),
)
def test_proto_round_trip(items, count):
    refs = References(items)
    proto = refs.to_proto(global_word_count=count)
    wire = RA.FromString(proto.SerializeToString())
    assert References.from_proto(wire, global_word_count=count) == refs
    usable = len(GLOBAL_WORDS) if count is None else count
    for m in wire.attribute_matches:
        assert m.name < usable
        assert m.map_key < usable or m.map_key == 0  # 0: no key
    assert len(set(wire.words)) == len(wire.words)
