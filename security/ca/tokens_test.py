import os

import pytest

from security.ca.identity import IdentityPattern
from security.ca.tokens import TokenFile, TokenFileError, parse_tokens

GOOD = """
- token: team-a
  identities: ["spiffe://cluster.local/ns/default/sa/a"]
- token: agent
  identities:
    - spiffe://cluster.local/ns/*/sa/*
"""


def test_a_token_grants_its_patterns(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text(GOOD)
    tokens = TokenFile(path)
    assert tokens.lookup("team-a") == (
        IdentityPattern.parse("spiffe://cluster.local/ns/default/sa/a"),
    )
    assert tokens.lookup("agent") == (IdentityPattern.parse("spiffe://cluster.local/ns/*/sa/*"),)
    assert tokens.lookup("nobody") is None
    assert tokens.lookup("") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("token: x", "want a list"),
        ("- token: ''\n  identities: [spiffe://cluster.local/ns/a/sa/b]", "entry 0: token"),
        ("- token: x\n  identities: []", "entry 0: identities: want a non-empty list"),
        ("- token: x\n  identities: [spiffe://cluster.local/ns/a]", r"identities\[0\]"),
        ("- token: x\n  identites: [a]", "want a mapping with keys token and identities"),
        (
            "- {token: x, identities: [spiffe://td/ns/a/sa/b]}\n"
            "- {token: x, identities: [spiffe://td/ns/a/sa/c]}",
            "entry 1: token: the same token appears twice",
        ),
        ("- [unclosed", "not YAML"),
    ],
)
def test_a_malformed_file_says_where(text, message):
    with pytest.raises(TokenFileError, match=message) as e:
        parse_tokens(text, "tokens.yaml")
    assert str(e.value).startswith("tokens.yaml:")


def test_an_edited_file_is_reloaded_and_a_broken_edit_ignored(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text(GOOD)
    tokens = TokenFile(path)
    assert tokens.lookup("new") is None

    path.write_text(GOOD + "- {token: new, identities: [spiffe://cluster.local/ns/x/sa/y]}\n")
    os.utime(path, ns=(1, 1))  # a different stamp even within the clock's resolution
    assert tokens.lookup("new") is not None

    path.write_text("- [broken")
    os.utime(path, ns=(2, 2))
    assert tokens.lookup("new") is not None  # the previous grants stay


def test_a_missing_file_fails_at_start(tmp_path):
    with pytest.raises(TokenFileError, match="No such file"):
        TokenFile(tmp_path / "absent.yaml")
