import pytest

from mixer.attribute import dictionary
from mixer.attribute.dictionary import (
    GLOBAL_INDEX,
    GLOBAL_WORDS,
    AttributeDecodeError,
    WordEncoder,
    check_caller_count,
    parse_words,
    usable_count,
    word_at,
)


def test_global_words_are_every_dash_line_of_the_yaml():
    lines = dictionary.DICTIONARY_FILE.read_text().splitlines()
    assert len(GLOBAL_WORDS) == sum(1 for line in lines if line.startswith("-")) == 222
    # The start of the list has been stable since Istio 0.2: real clients depend on it.
    assert GLOBAL_WORDS[:4] == ("source.ip", "source.port", "source.name", "source.uid")
    assert GLOBAL_WORDS[15] == "request.headers"
    assert GLOBAL_WORDS[31] == ":authority"


def test_quoted_words_keep_their_quotes_like_istios_generators():
    assert GLOBAL_WORDS[94] == "'200'"
    assert GLOBAL_WORDS[111] == "'0'"
    assert GLOBAL_WORDS[112] == "'1'"
    assert '"-"' in GLOBAL_INDEX
    # The unquoted forms are different words at other indexes.
    assert GLOBAL_INDEX["200"] != GLOBAL_INDEX["'200'"]
    assert "-" not in GLOBAL_INDEX


def test_reverse_index_matches_the_list():
    assert len(GLOBAL_INDEX) == len(GLOBAL_WORDS)  # no word twice
    for i, word in enumerate(GLOBAL_WORDS):
        assert GLOBAL_INDEX[word] == i


def test_parse_words_takes_raw_text_after_the_dash():
    text = "# comment\n- a\n-b\n- 'q'  \n  - indented\n\n- \"x y\"\nnot a word\n- a\n"
    assert parse_words(text) == ("a", "b", "'q'", '"x y"', "a")
    assert dictionary.build_index(parse_words(text))["a"] == 0  # first index wins


def test_word_encoder_prefers_usable_global_words():
    enc = WordEncoder(GLOBAL_INDEX, 10)
    assert enc.index("source.name") == 2
    assert enc.index("request.headers") == -1  # global index 15 is beyond what the peer knows
    assert enc.index("my.word") == -2
    assert enc.index("request.headers") == -1  # deduplicated
    assert enc.message_index("source.name") == -3
    assert enc.words == ["request.headers", "my.word", "source.name"]


def test_word_at_follows_the_index_rule():
    words = ["w0", "w1"]
    assert word_at(0, words, GLOBAL_WORDS, 222) == "source.ip"
    assert word_at(-1, words, GLOBAL_WORDS, 222) == "w0"
    assert word_at(-2, words, GLOBAL_WORDS, 222) == "w1"
    assert word_at(-3, words, GLOBAL_WORDS, 222) is None
    assert word_at(5, words, GLOBAL_WORDS, 5) is None
    assert word_at(4, words, GLOBAL_WORDS, 5) == "source.namespace"


def test_word_counts():
    assert usable_count(GLOBAL_WORDS, None) == 222
    assert usable_count(GLOBAL_WORDS, 111) == 111
    with pytest.raises(ValueError, match=r"global_word_count 223 is outside \[0, 222\]"):
        usable_count(GLOBAL_WORDS, 223)
    with pytest.raises(
        AttributeDecodeError,
        match="inconsistent global dictionary versions used: mixer knows 222 words, "
        "caller knows 300",
    ):
        check_caller_count(GLOBAL_WORDS, 300)
