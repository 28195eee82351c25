"""Typed conversions (ip, timestamp, dnsName, email, uri) and type-aware equality."""

import datetime

import pytest

from pkg.lang import values
from pkg.lang.errors import EvalError
from pkg.lang.types import ValueType


def test_ip():
    assert values.ip("10.1.2.3") == bytes([10, 1, 2, 3])
    assert values.ip("::1") == bytes(15) + b"\x01"
    assert values.ip("2001:db8::1") == bytes.fromhex("20010db8000000000000000000000001")


@pytest.mark.parametrize(
    "text", ["", "10.1.2", "10.1.2.256", "010.1.2.3", "fe80::1%eth0", "a::b::c"]
)
def test_ip_refuses(text):
    with pytest.raises(EvalError, match=r"could not convert .* to IP_ADDRESS"):
        values.ip(text)


def test_ip_equal():
    v4 = values.ip("10.1.2.3")
    assert values.ip_equal(v4, bytes([10, 1, 2, 3]))
    assert values.ip_equal(v4, values.ip("::ffff:10.1.2.3"))  # net.IP.Equal's rule
    assert values.ip_equal(values.ip("::ffff:10.1.2.3"), v4)
    assert not values.ip_equal(v4, values.ip("10.1.2.4"))
    assert not values.ip_equal(v4, values.ip("::a01:203"))  # IPv4-compatible is not mapped


def test_timestamp():
    utc = datetime.UTC
    assert values.timestamp("2015-01-02T15:04:35Z") == datetime.datetime(
        2015, 1, 2, 15, 4, 35, tzinfo=utc
    )
    with_zone = values.timestamp("2015-01-02T16:04:35.123456789+01:00")
    assert with_zone == datetime.datetime(2015, 1, 2, 15, 4, 35, 123456, tzinfo=utc)
    assert with_zone.utcoffset() == datetime.timedelta(hours=1)
    assert values.timestamp("2015-01-02T10:04:35-05:30").utcoffset() == -datetime.timedelta(
        hours=5, minutes=30
    )


@pytest.mark.parametrize(
    "text",
    ["2015-01-02", "2015-01-02 15:04:35Z", "2015-01-02T15:04:35", "2015-13-02T15:04:35Z",
     "2015-01-02T15:04:60Z", "2015-01-02t15:04:35z", "2015-01-02T15:04:35+24:00", ""],
)  # fmt: skip
def test_timestamp_refuses(text):
    with pytest.raises(EvalError, match="TIMESTAMP"):
        values.timestamp(text)


def test_dns_name():
    for name in ("www.istio.io", "www.istio.io.", "a", "xn--bcher-kva.de", "bücher.de", "A-1.b"):
        assert values.dns_name(name) == name
    for name in (
        "",
        ".",
        "a..b",
        "-a.io",
        "a-.io",
        "a_b.io",
        "a b",
        "x" * 64 + ".io",
        ("a." * 127) + "ab",
    ):
        with pytest.raises(EvalError, match="dns name"):
            values.dns_name(name)


def test_dns_name_equal():
    assert values.dns_name_equal("WWW.Istio.IO", "www.istio.io")
    assert values.dns_name_equal("www.istio.io.", "www.istio.io")
    assert values.dns_name_equal("bücher.de", "xn--bcher-kva.de")
    assert not values.dns_name_equal("istio.io", "istio.com")


def test_email():
    for address in (
        "user@istio.io",
        "<user@istio.io>",
        "a.b+c@x.y",
        '"a b"@istio.io',
        "ü@bücher.de",
    ):
        assert values.email_address(address) == address
    for address in (
        "",
        "user",
        "@istio.io",
        "user@",
        "Bob <bob@istio.io>",
        "a b@istio.io",
        "a..b@istio.io",
        "a@b_c.io",
    ):
        with pytest.raises(EvalError, match="e-mail"):
            values.email_address(address)


def test_email_equal():
    assert values.email_equal("joe@Istio.IO", "joe@istio.io.")
    assert not values.email_equal("Joe@istio.io", "joe@istio.io")  # local parts are exact
    assert not values.email_equal("joe@istio.io", "joe@istio.com")


def test_uri():
    for text in (
        "http://istio.io",
        "https://a:b@istio.io:8443/p?q#f",
        "mailto:x@y",
        "a%20b",
        "/relative",
    ):
        assert values.uri(text) == text
    for text in ("", ":x", "http://x:99999", "http://x:ab/", "%zz", "http://a b/", "a\x01"):
        with pytest.raises(EvalError, match="uri"):
            values.uri(text)


def test_uri_equal():
    assert values.uri_equal("HTTP://Istio.IO/a?b#c", "http://istio.io./a?b#c")
    assert values.uri_equal("https://istio.io:8443/", "https://ISTIO.io:8443/")
    assert not values.uri_equal("http://istio.io/A", "http://istio.io/a")  # paths are exact
    assert not values.uri_equal("http://istio.io:80/", "http://istio.io/")  # as Go compares ports
    assert not values.uri_equal("http://istio.io/", "https://istio.io/")
    assert values.uri_equal("MAILTO:x@y", "mailto:x@y")
    assert not values.uri_equal("urn:A", "urn:a")


def test_equality_table():
    assert values.equality(ValueType.STRING) is None
    assert values.equality(ValueType.IP_ADDRESS) is values.ip_equal
    assert values.equality(ValueType.DNS_NAME) is values.dns_name_equal
    assert values.equality(ValueType.EMAIL_ADDRESS) is values.email_equal
    assert values.equality(ValueType.URI) is values.uri_equal
