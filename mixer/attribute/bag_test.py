import datetime
import enum
import math

import pytest

from api.mixer.v1 import check_pb2
from mixer.attribute.bag import Bag, TrackingBag, normalize
from mixer.attribute.referenced import ABSENCE, EXACT, Match, References

UTC = datetime.UTC
RA = check_pb2.ReferencedAttributes


def sample() -> Bag:
    return Bag(
        {
            "source.name": "productpage",
            "destination.port": 9080,
            "request.headers": {":path": "/reviews/0", "x-custom": "yes"},
            "connection.mtls": True,
        }
    )


def test_get_and_map_value():
    bag = sample()
    assert bag.get("source.name") == ("productpage", True)
    assert bag.get("destination.port") == (9080, True)
    assert bag.get("missing") == (None, False)
    assert bag.map_value("request.headers", ":path") == ("/reviews/0", True)
    assert bag.map_value("request.headers", "nope") == ("", False)
    assert bag.map_value("response.headers", ":path") == ("", False)
    assert set(bag.names()) == {
        "source.name",
        "destination.port",
        "request.headers",
        "connection.mtls",
    }
    assert len(bag) == 4
    assert "source.name" in bag
    assert "missing" not in bag


def test_map_value_of_a_non_map_is_a_type_error():
    with pytest.raises(TypeError, match=r"attribute 'source\.name' is a str, not a string map"):
        sample().map_value("source.name", "k")


def test_bag_copies_its_input():
    headers = {"a": "1"}
    values = {"request.headers": headers}
    bag = Bag(values)
    headers["b"] = "2"
    values["other"] = "x"
    assert bag.get("request.headers") == ({"a": "1"}, True)
    assert "other" not in bag


class Code(enum.IntEnum):
    OK = 200


class Name(str):
    pass


def test_normalize_converts_subclasses_and_timezones():
    assert type(normalize("a", Code.OK)) is int
    assert type(normalize("a", Name("x"))) is str
    assert normalize("a", bytearray(b"\x01")) == b"\x01"
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    ts = normalize("t", datetime.datetime(2024, 5, 1, 12, 0, tzinfo=plus2))
    assert ts == datetime.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (datetime.datetime(2024, 1, 1), ValueError, "attribute 'x': timestamp .* no timezone"),
        (2**63, ValueError, "attribute 'x': 9223372036854775808 does not fit in an int64"),
        (-(2**63) - 1, ValueError, "does not fit in an int64"),
        (datetime.timedelta(days=3_652_501), ValueError, "exceeds \\+-10000 years"),
        ({"k": 1}, TypeError, "a string map needs str keys and values, got str -> int"),
        ([1, 2], TypeError, "attribute 'x': unsupported value type list"),
        (None, TypeError, "unsupported value type NoneType"),
    ],
)
def test_bad_values_are_refused(value, error, message):
    with pytest.raises(error, match=message):
        Bag({"x": value})


def test_names_must_be_strings():
    with pytest.raises(TypeError, match="attribute names are str, got int 3"):
        Bag({3: "x"})  # type: ignore[dict-item]


def test_equality_is_typed_and_nan_aware():
    assert Bag({"a": 1}) != Bag({"a": True})
    assert Bag({"a": 1}) != Bag({"a": 1.0})
    assert Bag({"a": math.nan}) == Bag({"a": math.nan})
    assert Bag({"a": 1}) != Bag({"a": 1, "b": 2})
    assert sample() == sample()
    assert repr(Bag({"b": 1, "a": "x"})) == "Bag({'a': 'x', 'b': 1})"


def test_tracking_records_exact_and_absence():
    tracked = TrackingBag(sample())
    assert tracked.get("source.name") == ("productpage", True)
    assert tracked.get("my.custom") == (None, False)
    assert tracked.get("source.name") == ("productpage", True)  # recorded once
    assert list(tracked.references) == [
        Match("source.name", EXACT),
        Match("my.custom", ABSENCE),
    ]
    want = RA(
        words=["my.custom"],
        attribute_matches=[
            RA.AttributeMatch(name=2, condition=RA.EXACT),  # source.name is global word 2
            RA.AttributeMatch(name=-1, condition=RA.ABSENCE),
        ],
    )
    assert tracked.referenced_attributes() == want


def test_tracking_records_map_keys():
    tracked = TrackingBag(sample())
    assert tracked.map_value("request.headers", ":path") == ("/reviews/0", True)
    assert tracked.map_value("request.headers", "x-missing") == ("", False)
    assert tracked.map_value("response.headers", ":status") == ("", False)
    # A key that is global word 0 must not travel as map_key 0, which means "no key".
    assert tracked.map_value("request.headers", "source.ip") == ("", False)
    want = RA(
        words=["x-missing", "source.ip"],
        attribute_matches=[
            RA.AttributeMatch(name=15, map_key=33, condition=RA.EXACT),
            RA.AttributeMatch(name=15, map_key=-1, condition=RA.ABSENCE),
            RA.AttributeMatch(name=26, map_key=35, condition=RA.ABSENCE),
            RA.AttributeMatch(name=15, map_key=-2, condition=RA.ABSENCE),
        ],
    )
    assert tracked.referenced_attributes() == want


def test_get_of_a_map_references_the_whole_map():
    tracked = TrackingBag(sample())
    value, found = tracked.get("request.headers")
    assert found
    assert value == {":path": "/reviews/0", "x-custom": "yes"}
    ra = tracked.referenced_attributes()
    assert list(ra.attribute_matches) == [RA.AttributeMatch(name=15, condition=RA.EXACT)]
    assert not ra.words


def test_names_is_not_a_reference():
    tracked = TrackingBag(sample())
    assert "source.name" in tracked.names()
    assert len(tracked.references) == 0


def test_referenced_attributes_respects_the_clients_word_count():
    tracked = TrackingBag(sample())
    tracked.get("source.name")
    tracked.map_value("request.headers", ":path")
    ra = tracked.referenced_attributes(global_word_count=10)
    assert list(ra.words) == ["request.headers", ":path"]
    assert [(m.name, m.map_key) for m in ra.attribute_matches] == [(2, 0), (-1, -2)]


def test_evaluations_can_share_or_merge_references():
    bag = sample()
    shared = References()
    TrackingBag(bag, shared).get("source.name")
    TrackingBag(bag, shared).get("destination.port")
    assert [m.name for m in shared] == ["source.name", "destination.port"]

    first, second = TrackingBag(bag), TrackingBag(bag)
    first.get("source.name")
    second.get("source.name")
    second.map_value("request.headers", "x-custom")
    first.references.merge(second.references)
    assert list(first.references) == [
        Match("source.name", EXACT),
        Match("request.headers", EXACT, "x-custom"),
    ]
