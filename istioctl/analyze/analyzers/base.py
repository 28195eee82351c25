"""What an analyzer is: a name, what it checks, and a function of the snapshot that reports
messages through the context."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from istioctl.analyze import diag
from istioctl.analyze.model import Entry, Snapshot


class Context:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.messages: list[diag.Message] = []

    def report(self, entry: Entry, name: str, *args: object, path: str = "") -> None:
        """A message of type `name` (messages.yaml) about `entry`; `path` its field at fault."""
        self.messages.append(diag.Message(diag.catalog()[name], args, entry.origin, path))

    @property
    def workloads_known(self) -> bool:
        """Whether the input holds any workload at all. Without any (files analyzed alone, a
        user's own config), "no workload matches this selector" says nothing, so the checks
        that would report it stay quiet, as Istio's do for the system ingress gateway."""
        return bool(self.snapshot.workloads)


@dataclasses.dataclass(frozen=True)
class Analyzer:
    name: str
    description: str
    run: Callable[[Context], None]
