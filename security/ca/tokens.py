"""The token file: the local platform's stand-in for Kubernetes TokenReview.

On Kubernetes, istiod trusts a ServiceAccount JWT because the API server vouches for it.
There is no API server on one machine, so the operator (or the local launcher) writes which
bearer tokens may claim which identities:

    - token: s3cret-for-default
      identities: ["spiffe://cluster.local/ns/default/sa/*"]
    - token: node-agent-token
      identities: ["spiffe://cluster.local/ns/*/sa/*"]

Tokens are kept only as SHA-256 digests. The file is re-read when it changes, so new pods can
be granted identities without restarting the CA; a broken edit is logged and ignored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib

import yaml

from security.ca.identity import IdentityError, IdentityPattern

log = logging.getLogger("security.ca")

Grants = dict[bytes, tuple[IdentityPattern, ...]]


class TokenFileError(ValueError):
    """The token file is unreadable or malformed; the message names file, entry and field."""


def parse_tokens(text: str, source: str) -> Grants:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TokenFileError(f"{source}: not YAML: {e}") from None
    if doc is None:
        return {}
    if not isinstance(doc, list):
        raise TokenFileError(f"{source}: want a list of {{token, identities}} entries")
    grants: Grants = {}
    for n, entry in enumerate(doc):
        where = f"{source}: entry {n}"
        if not isinstance(entry, dict) or set(entry) - {"token", "identities"}:
            raise TokenFileError(f"{where}: want a mapping with keys token and identities")
        token = entry.get("token")
        if not isinstance(token, str) or not token:
            raise TokenFileError(f"{where}: token: want a non-empty string")
        identities = entry.get("identities")
        if not isinstance(identities, list) or not identities:
            raise TokenFileError(f"{where}: identities: want a non-empty list of patterns")
        patterns = []
        for i, text_pattern in enumerate(identities):
            try:
                patterns.append(IdentityPattern.parse(str(text_pattern)))
            except IdentityError as e:
                raise TokenFileError(f"{where}: identities[{i}]: {e}") from None
        digest = _digest(token)
        if digest in grants:
            raise TokenFileError(f"{where}: token: the same token appears twice")
        grants[digest] = tuple(patterns)
    return grants


class TokenFile:
    """Bearer token -> identity patterns, from a YAML file re-read whenever it changes."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self._grants = parse_tokens(self._read(), str(path))  # a bad file fails the start

    def lookup(self, token: str) -> tuple[IdentityPattern, ...] | None:
        self._reload_if_changed()
        return self._grants.get(_digest(token))

    def _reload_if_changed(self) -> None:
        try:
            stamp = self._stat()
        except TokenFileError as e:
            log.error("keeping the previous tokens: %s", e)
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._grants = parse_tokens(self._read(), str(self.path))
        except TokenFileError as e:
            log.error("keeping the previous tokens: %s", e)
            return
        log.info("reloaded %d tokens from %s", len(self._grants), self.path)

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise TokenFileError(f"{self.path}: {e.strerror}") from None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> str:
        try:
            return self.path.read_text()
        except OSError as e:
            raise TokenFileError(f"{self.path}: {e.strerror}") from None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
