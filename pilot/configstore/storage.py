"""The durable copy of the store: one SQLite file, written before any write is acknowledged.

SQLite runs in WAL mode with synchronous=FULL, so a committed transaction survives a crash or a
power cut. Every method is called from one worker thread (see store.py), which owns the
connection; nothing here is async.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sqlite3
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    api_version TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    resource_version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (api_version, kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
_RESOURCE_VERSION = "resource_version"


@dataclasses.dataclass(frozen=True)
class Row:
    """One stored object, keyed the way the REST paths are."""

    api_version: str
    kind: str
    namespace: str
    name: str
    resource_version: int
    body: dict[str, Any]


class Storage:
    def __init__(self, path: str | pathlib.Path) -> None:
        # Autocommit mode: every transaction below is explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def load(self) -> tuple[int, list[Row]]:
        """The store's resourceVersion and every object, as committed."""
        found = self._db.execute(
            "SELECT value FROM counters WHERE name = ?", (_RESOURCE_VERSION,)
        ).fetchone()
        rows = [
            Row(api_version, kind, namespace, name, version, json.loads(body))
            for api_version, kind, namespace, name, version, body in self._db.execute(
                "SELECT api_version, kind, namespace, name, resource_version, body FROM objects"
            )
        ]
        return (found[0] if found else 0), rows

    def put(self, row: Row) -> None:
        """Creates or replaces one object and advances the resourceVersion, atomically."""
        with self._transaction():
            self._insert(row)
            self._set_version(row.resource_version)

    def _insert(self, row: Row) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?)",
            (
                row.api_version,
                row.kind,
                row.namespace,
                row.name,
                row.resource_version,
                json.dumps(row.body, separators=(",", ":")),
            ),
        )

    def delete(self, api_version: str, kind: str, namespace: str, name: str, version: int) -> None:
        """Removes one object and advances the resourceVersion, atomically."""
        with self._transaction():
            self._db.execute(
                "DELETE FROM objects WHERE api_version = ? AND kind = ? AND namespace = ? "
                "AND name = ?",
                (api_version, kind, namespace, name),
            )
            self._set_version(version)

    def move(self, moves: list[tuple[Row, Row]]) -> None:
        """Rewrites rows under new keys (a kind's stored version changed), atomically; the
        store's resourceVersion stays, as the objects are the same."""
        with self._transaction():
            for old, new in moves:
                self._db.execute(
                    "DELETE FROM objects WHERE api_version = ? AND kind = ? AND namespace = ? "
                    "AND name = ?",
                    (old.api_version, old.kind, old.namespace, old.name),
                )
                self._insert(new)

    def close(self) -> None:
        self._db.close()

    def _set_version(self, version: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO counters VALUES (?, ?)", (_RESOURCE_VERSION, version)
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the body raised."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
