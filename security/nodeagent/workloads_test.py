"""The workload-credentials folder: what binds, what is refused (and changes nothing)."""

import asyncio
import logging
import os
import pathlib

import pytest

from security.nodeagent.identity import identity_from_spiffe_id
from security.nodeagent.testing import run_async, write_workload
from security.nodeagent.workloads import (
    Changes,
    WorkloadEntryError,
    WorkloadFolder,
    parse_entry,
)

REVIEWS = "spiffe://cluster.local/ns/bookinfo/sa/reviews"
RATINGS = "spiffe://cluster.local/ns/bookinfo/sa/ratings"
ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod"


def folder_of(tmp_path: pathlib.Path) -> WorkloadFolder:
    folder = WorkloadFolder(
        tmp_path / "workloads", trust_domain="cluster.local", reserved=frozenset({ISTIOD})
    )
    folder.prepare()
    return folder


def identities(changes_or_folder) -> list[str]:
    bindings = (
        changes_or_folder.bound
        if isinstance(changes_or_folder, Changes)
        else changes_or_folder.bindings.values()
    )
    return sorted(b.identity.spiffe_id for b in bindings)


def test_entries_bind_and_their_removal_unbinds(tmp_path: pathlib.Path) -> None:
    folder = folder_of(tmp_path)
    write_workload(folder.folder, "reviews", REVIEWS, tmp_path / "r.sock", "bookinfo/reviews")
    write_workload(folder.folder, "ratings", RATINGS, tmp_path / "t.sock")
    (folder.folder / ".half.json.tmp").write_text("{")  # a writer's temporary file
    (folder.folder / "notes.txt").write_text("ignored")
    changes = folder.scan()
    assert identities(changes) == [RATINGS, REVIEWS]
    assert not changes.unbound
    assert folder.bindings["reviews.json"].socket == tmp_path / "r.sock"
    assert folder.bindings["reviews.json"].workload == "bookinfo/reviews"
    assert not folder.scan()  # nothing changed, nothing reported
    assert folder.errors == {}

    (folder.folder / "ratings.json").unlink()
    changes = folder.scan()
    assert [b.identity.spiffe_id for b in changes.unbound] == [RATINGS]
    assert not changes.bound
    assert identities(folder) == [REVIEWS]


def test_a_changed_entry_rebinds(tmp_path: pathlib.Path) -> None:
    folder = folder_of(tmp_path)
    write_workload(folder.folder, "w", REVIEWS, tmp_path / "a.sock")
    folder.scan()
    write_workload(folder.folder, "w", RATINGS, tmp_path / "a.sock")
    changes = folder.scan()
    assert identities(changes) == [RATINGS]
    assert identities(folder) == [RATINGS]


BAD = [
    ("not json", "not JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"socket": "/s.sock"}', "field 'identity' must be a non-empty string"),
    (f'{{"identity": "{REVIEWS}"}}', "field 'socket' must be a non-empty string"),
    (f'{{"identity": "{REVIEWS}", "socket": "/s", "extra": 1}}', "unknown fields ['extra']"),
    ('{"identity": "spiffe://cluster.local/ns/a/b/sa/c", "socket": "/s"}', "is not spiffe://"),
    ('{"identity": "spiffe://cluster.local/ns/Bad/sa/c", "socket": "/s"}', "invalid namespace"),
    ('{"identity": "spiffe://other.org/ns/a/sa/b", "socket": "/s"}', "trust domain 'other.org'"),
    (f'{{"identity": "{ISTIOD}", "socket": "/s"}}', "is reserved"),
    (f'{{"identity": "{REVIEWS}", "socket": "relative.sock"}}', "not an absolute path"),
    (f'{{"identity": "{REVIEWS}", "socket": "/{"x" * 120}"}}', "longer than a Unix socket"),
    (f'{{"identity": "{REVIEWS}", "socket": "/s", "workload": 3}}', "'workload' must be"),
    (f'{{"identity": "{REVIEWS}", "socket": "/s", "uid": 1337}}', "field 'gid' must be a number"),
    (f'{{"identity": "{REVIEWS}", "socket": "/s", "uid": -1, "gid": 1}}', "field 'uid' must be"),
    (f'{{"identity": "{REVIEWS}", "socket": "/s", "uid": true, "gid": 1}}', "field 'uid' must"),
    (f'{{"identity": "{REVIEWS}", "socket": "/s", "uid": "1337", "gid": 1}}', "'uid' must be"),
]


def test_an_entry_may_name_the_proxys_user_for_its_socket() -> None:
    text = f'{{"identity": "{REVIEWS}", "socket": "/s/sds.sock", "uid": 1337, "gid": 1337}}'
    binding = parse_entry(text, source="w.json", trust_domain="cluster.local")
    assert binding.owner == (1337, 1337)
    assert binding.to_json()["uid"] == 1337
    plain = parse_entry(
        f'{{"identity": "{REVIEWS}", "socket": "/s/sds.sock"}}',
        source="w.json",
        trust_domain="cluster.local",
    )
    assert plain.owner is None


@pytest.mark.parametrize(("text", "why"), BAD)
def test_a_bad_entry_says_which_file_and_why(text: str, why: str) -> None:
    with pytest.raises(WorkloadEntryError, match=r"^w\.json: ") as raised:
        parse_entry(
            text, source="w.json", trust_domain="cluster.local", reserved=frozenset({ISTIOD})
        )
    assert why in str(raised.value)


def test_a_bad_file_changes_nothing_and_is_logged_once(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="security.nodeagent")
    folder = folder_of(tmp_path)
    write_workload(folder.folder, "reviews", REVIEWS, tmp_path / "r.sock")
    folder.scan()
    # A new bad file binds nothing; a bound file that turns bad keeps its binding.
    (folder.folder / "broken.json").write_text("{")
    (folder.folder / "reviews.json").write_text(f'{{"identity": "{ISTIOD}", "socket": "/x"}}')
    (folder.folder / "huge.json").write_text(" " * 20000)
    (folder.folder / "binary.json").write_bytes(b"\xff\xfe")
    (folder.folder / "dir.json").mkdir()
    assert not folder.scan()
    assert identities(folder) == [REVIEWS]
    assert folder.bindings["reviews.json"].socket == tmp_path / "r.sock"
    assert sorted(folder.errors) == [
        "binary.json", "broken.json", "dir.json", "huge.json", "reviews.json",
    ]  # fmt: skip
    assert "keeping its last good binding" in caplog.text
    assert "huge.json: larger than" in folder.errors["huge.json"]
    logged = len(caplog.records)
    assert logged == 5
    assert not folder.scan()
    assert len(caplog.records) == logged  # unchanged files are not read, nor logged, again
    # Fixed: used again (and the binding was never lost, so nothing to report).
    write_workload(folder.folder, "reviews", REVIEWS, tmp_path / "r.sock")
    assert not folder.scan()
    assert "reviews.json" not in folder.errors


def test_two_entries_cannot_share_a_socket(tmp_path: pathlib.Path) -> None:
    folder = folder_of(tmp_path)
    write_workload(folder.folder, "a", REVIEWS, tmp_path / "s.sock")
    write_workload(folder.folder, "b", RATINGS, tmp_path / "s.sock")
    changes = folder.scan()
    assert identities(changes) == [REVIEWS]
    assert "already a.json's" in folder.errors["b.json"]


def test_an_unreadable_folder_keeps_the_bindings(tmp_path: pathlib.Path) -> None:
    folder = folder_of(tmp_path)
    write_workload(folder.folder, "a", REVIEWS, tmp_path / "s.sock")
    folder.scan()
    moved = tmp_path / "elsewhere"
    os.rename(folder.folder, moved)
    assert not folder.scan()
    assert identities(folder) == [REVIEWS]


def test_identity_from_spiffe_id() -> None:
    identity = identity_from_spiffe_id(REVIEWS)
    assert (identity.namespace, identity.service_account) == ("bookinfo", "reviews")
    assert identity.spiffe_id == REVIEWS


@run_async
async def test_watch_reports_new_entries(tmp_path: pathlib.Path) -> None:
    folder = folder_of(tmp_path)
    seen: asyncio.Queue[Changes] = asyncio.Queue()

    async def record(changes: Changes) -> None:
        await seen.put(changes)

    started = asyncio.Event()
    task = asyncio.create_task(folder.watch(record, started=started, period=0.01))
    try:
        async with asyncio.timeout(5):
            await started.wait()
            write_workload(folder.folder, "a", REVIEWS, tmp_path / "s.sock")
            assert identities(await seen.get()) == [REVIEWS]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
