"""Referenced attributes: what a Check decision depended on, for the client's cache key.

Each reference is an attribute name, optionally one key of a string-map attribute, and a
condition: EXACT (the value mattered), ABSENCE (that it was missing mattered) or, from other
producers, REGEX. On the wire (`istio.mixer.v1.ReferencedAttributes`) names and keys are
dictionary indexes like everywhere else, with the message's own `words` list; `map_key` 0 means
"no key" (the whole attribute), so a key that is global word 0 travels as a message word.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence

from api.mixer.v1 import check_pb2
from mixer.attribute.dictionary import (
    GLOBAL_WORDS,
    AttributeDecodeError,
    WordEncoder,
    describe_index,
    index_for,
    usable_count,
    word_at,
)

_RA = check_pb2.ReferencedAttributes
ABSENCE: int = _RA.ABSENCE
EXACT: int = _RA.EXACT
REGEX: int = _RA.REGEX
_CONDITIONS = {ABSENCE: "ABSENCE", EXACT: "EXACT", REGEX: "REGEX"}


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    """One reference: `map_key` None is the whole attribute; `regex` only with REGEX."""

    name: str
    condition: int
    map_key: str | None = None
    regex: str = ""

    def __str__(self) -> str:
        target = self.name if self.map_key is None else f"{self.name}[{self.map_key!r}]"
        extra = f" {self.regex!r}" if self.condition == REGEX else ""
        return f"{_CONDITIONS.get(self.condition, self.condition)} {target}{extra}"


class ConflictingReferencesError(ValueError):
    """The same attribute was found present by one evaluation and absent by another: the
    references describe different bags and cannot be merged."""


class References:
    """An ordered set of references (first-recorded order), merged without duplicates."""

    __slots__ = ("_matches",)

    def __init__(self, matches: Iterable[Match] = ()) -> None:
        self._matches: dict[tuple[str, str | None, str], Match] = {}
        for match in matches:
            self.add(match)

    def record(self, name: str, map_key: str | None, condition: int, regex: str = "") -> None:
        key = (name, map_key, regex)
        seen = self._matches.get(key)
        if seen is None:
            self._matches[key] = Match(name, condition, map_key, regex)
        elif seen.condition != condition:
            raise ConflictingReferencesError(
                f"{Match(name, condition, map_key, regex)} conflicts with {seen}"
            )

    def add(self, match: Match) -> None:
        self.record(match.name, match.map_key, match.condition, match.regex)

    def merge(self, other: References) -> None:
        """Add every reference of `other` (e.g. another evaluation over the same bag)."""
        for match in other:
            self.add(match)

    def __iter__(self) -> Iterator[Match]:
        return iter(self._matches.values())

    def __len__(self) -> int:
        return len(self._matches)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, References):
            return NotImplemented
        return self._matches == other._matches  # order-insensitive: dict equality

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"References([{', '.join(str(m) for m in self)}])"

    def to_proto(
        self, global_words: Sequence[str] = GLOBAL_WORDS, global_word_count: int | None = None
    ) -> check_pb2.ReferencedAttributes:
        """Compressed for a client that knows the first `global_word_count` global words."""
        encoder = WordEncoder(
            index_for(global_words), usable_count(global_words, global_word_count)
        )
        out = check_pb2.ReferencedAttributes()
        for match in self._matches.values():
            entry = out.attribute_matches.add(
                name=encoder.index(match.name), condition=match.condition, regex=match.regex
            )
            if match.map_key is not None:
                mk = encoder.index(match.map_key)
                entry.map_key = mk if mk != 0 else encoder.message_index(match.map_key)
        out.words.extend(encoder.words)
        return out

    @classmethod
    def from_proto(
        cls,
        proto: check_pb2.ReferencedAttributes,
        global_words: Sequence[str] = GLOBAL_WORDS,
        global_word_count: int | None = None,
    ) -> References:
        """Decode a response's references; AttributeDecodeError names the bad match."""
        count = usable_count(global_words, global_word_count)
        words = list(proto.words)
        refs = cls()
        for i, m in enumerate(proto.attribute_matches):
            name = word_at(m.name, words, global_words, count)
            if name is None:
                raise AttributeDecodeError(
                    f"attribute_matches[{i}].name: {describe_index(m.name, len(words), count)}"
                )
            key = None
            if m.map_key != 0:
                key = word_at(m.map_key, words, global_words, count)
                if key is None:
                    raise AttributeDecodeError(
                        f"attribute_matches[{i}].map_key ({name}): "
                        f"{describe_index(m.map_key, len(words), count)}"
                    )
            if m.condition not in _CONDITIONS:
                raise AttributeDecodeError(
                    f"attribute_matches[{i}] ({name}): invalid condition {m.condition}"
                )
            try:
                refs.record(name, key, m.condition, m.regex)
            except ConflictingReferencesError as e:
                raise AttributeDecodeError(f"attribute_matches[{i}]: {e}") from None
        return refs


def merge_references(*references: References) -> References:
    """One set holding the references of several evaluations."""
    merged = References()
    for refs in references:
        merged.merge(refs)
    return merged
