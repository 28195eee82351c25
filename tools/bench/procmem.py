"""A process's memory as Linux accounts it, and finding the processes of a running mesh.

RSS counts every resident page a process maps, shared or not: each Envoy maps the same
~60 MB binary, so RSS overstates what one more sidecar costs. PSS divides each shared page
among the processes sharing it (sums add up to the real total); private memory
(Private_Clean + Private_Dirty) is what the process alone holds, what goes away with it.
"""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

PROC = pathlib.Path("/proc")


@dataclasses.dataclass(frozen=True)
class Memory:
    """Kibibytes, as /proc reports them."""

    rss_kib: int
    pss_kib: int
    private_kib: int
    vm_hwm_kib: int = 0  # peak RSS

    def to_json(self) -> dict[str, Any]:
        return {
            "rss_mib": _mib(self.rss_kib),
            "pss_mib": _mib(self.pss_kib),
            "private_mib": _mib(self.private_kib),
            "peak_rss_mib": _mib(self.vm_hwm_kib),
        }


def parse_kib_fields(text: str) -> dict[str, int]:
    """`Key:   1234 kB` lines (smaps_rollup, status) as {key: kibibytes}; others skipped."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[key.strip()] = int(parts[0])
    return fields


def memory_from(smaps_rollup: str, status: str) -> Memory:
    rollup = parse_kib_fields(smaps_rollup)
    state = parse_kib_fields(status)
    return Memory(
        rss_kib=state.get("VmRSS", rollup.get("Rss", 0)),
        pss_kib=rollup["Pss"],
        private_kib=rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0),
        vm_hwm_kib=state.get("VmHWM", 0),
    )


def read_memory(pid: int) -> Memory:
    """Raises FileNotFoundError / ProcessLookupError when the process is gone."""
    base = PROC / str(pid)
    return memory_from((base / "smaps_rollup").read_text(), (base / "status").read_text())


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def parent_of(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: fields start after the last ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


def pids() -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def children(pid: int) -> list[int]:
    return sorted(p for p in pids() if parent_of(p) == pid)


def find(predicate: Callable[[list[str]], bool]) -> list[int]:
    """Pids whose command line satisfies `predicate`."""
    return sorted(p for p in pids() if (argv := cmdline(p)) and predicate(argv))


def envoy_of(agent_pid: int, bootstrap: pathlib.Path) -> int | None:
    """The Envoy an agent started: its child running `envoy -c <bootstrap>`.

    Falls back to any process with that command line (an Envoy whose agent died).
    """

    def is_it(argv: list[str]) -> bool:
        return (
            bool(argv)
            and pathlib.Path(argv[0]).name == "envoy"
            and any(a == "-c" and b == str(bootstrap) for a, b in itertools.pairwise(argv))
        )

    for child in children(agent_pid):
        if is_it(cmdline(child)):
            return child
    found = find(is_it)
    return found[0] if found else None


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)
