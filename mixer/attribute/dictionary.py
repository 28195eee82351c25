"""Mixer's global word list and the index scheme every compressed message shares.

A word travels as an index: `index >= 0` is the global word `GLOBAL_WORDS[index]`, `index < 0`
is the message's own word `words[-index - 1]` (so -1 is words[0]). A client that knows fewer
global words says so in `global_word_count` and only uses the first that many.

The list is read the way Istio's generators read it (mixer/bin/generate_word_list.py and
mixerclient's create_global_dictionary.py): every line starting with `-` gives the raw text
after the dash, stripped, quotes included, so the words are literally `'200'`, `'0'`, `'1'` and `"-"`. Parsing
it as YAML would unquote them and shift nothing but break wire compatibility with real clients.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

# `absolute()`, not `resolve()`: under Bazel this file is a symlink in the runfiles tree and the
# yaml (a `data` dependency) sits in the same tree, not necessarily beside the resolved source.
DICTIONARY_FILE = (
    pathlib.Path(__file__).absolute().parents[2] / "api" / "mixer" / "v1" / "global_dictionary.yaml"
)


class AttributeDecodeError(ValueError):
    """A compressed attribute message that cannot be decoded; str() says where and why."""


def parse_words(text: str) -> tuple[str, ...]:
    """The words of a global dictionary file's text, in index order."""
    words = []
    for line in text.splitlines():
        if line.startswith("-"):
            # Exactly create_global_dictionary.py's `line[1:].strip()`: no unquoting.
            words.append(line[1:].strip())
    return tuple(words)


def load_words(path: pathlib.Path = DICTIONARY_FILE) -> tuple[str, ...]:
    return parse_words(path.read_text(encoding="utf-8"))


def build_index(words: Sequence[str]) -> dict[str, int]:
    """Word -> its first index (a word listed twice keeps the index a client would find first)."""
    index: dict[str, int] = {}
    for i, word in enumerate(words):
        index.setdefault(word, i)
    return index


GLOBAL_WORDS: tuple[str, ...] = load_words()
GLOBAL_INDEX: Mapping[str, int] = build_index(GLOBAL_WORDS)


def index_for(words: Sequence[str]) -> Mapping[str, int]:
    """The reverse index of a global word list, reusing the precomputed one for the default."""
    return GLOBAL_INDEX if words is GLOBAL_WORDS else build_index(words)


def usable_count(global_words: Sequence[str], global_word_count: int | None) -> int:
    """How many global words may be used; None means all of them."""
    if global_word_count is None:
        return len(global_words)
    if not 0 <= global_word_count <= len(global_words):
        raise ValueError(
            f"global_word_count {global_word_count} is outside [0, {len(global_words)}]"
        )
    return global_word_count


def check_caller_count(global_words: Sequence[str], global_word_count: int | None) -> int:
    """The usable count for a caller's declared `global_word_count`, as a decode error."""
    if global_word_count is not None and global_word_count > len(global_words):
        # Mixer's own wording (grpcServer.go): the client's dictionary is newer than ours.
        raise AttributeDecodeError(
            "inconsistent global dictionary versions used: "
            f"mixer knows {len(global_words)} words, caller knows {global_word_count}"
        )
    return usable_count(global_words, global_word_count)


def describe_index(index: int, message_word_count: int, global_count: int) -> str:
    """Why an index does not name a word, for error messages."""
    if index >= 0:
        return f"global word index {index} is out of range (caller uses {global_count} words)"
    return (
        f"message word index {index} (words[{-index - 1}]) is out of range "
        f"(message has {message_word_count} words)"
    )


class WordEncoder:
    """Assigns indexes to words for one message (Istio's dictState / mixerclient's
    MessageDictionary): the global index when the word is among the first `global_count` global
    words, else a message word, each added once, in first-use order."""

    __slots__ = ("_global_count", "_global_index", "_message_index", "words")

    def __init__(self, global_index: Mapping[str, int], global_count: int) -> None:
        self._global_index = global_index
        self._global_count = global_count
        self._message_index: dict[str, int] = {}
        self.words: list[str] = []

    def index(self, word: str) -> int:
        i = self._global_index.get(word)
        if i is not None and i < self._global_count:
            return i
        return self.message_index(word)

    def message_index(self, word: str) -> int:
        """The word's index in the message dictionary, even if it is a global word."""
        i = self._message_index.get(word)
        if i is None:
            self.words.append(word)
            i = self._message_index[word] = -len(self.words)
        return i


def word_at(
    index: int, message_words: Sequence[str], global_words: Sequence[str], global_count: int
) -> str | None:
    """The word an index names, or None if it names none."""
    if index >= 0:
        return global_words[index] if index < global_count else None
    slot = -index - 1
    return message_words[slot] if slot < len(message_words) else None
