"""A command's handler named by where it lives, imported only when that command runs.

Command modules (istioctl/cmd/*.py) build the whole parser for every start-up, `--help`
included, so they import nothing but argparse; each names its handler with
`set_defaults(handler=Ref("istioctl.resources.get", "get"))` and the module holding it,
with whatever that one command needs (protobuf, the loader, a client), is imported by
`resolve()` when the command is chosen.

A handler takes the parsed arguments and returns the exit status: a plain function for
work done in sequence, or a coroutine function when it waits on many things at once (main
then runs it under asyncio, imported only for it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    Handler = Callable[[argparse.Namespace], int | Awaitable[int]]


class Ref:
    """`module`, `name` of a handler. (A plain class: importing dataclasses alone would
    double the start-up of `--help`.)"""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __repr__(self) -> str:
        return f"Ref({self.module!r}, {self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and (self.module, self.name) == (other.module, other.name)

    def __hash__(self) -> int:
        return hash((self.module, self.name))

    def resolve(self) -> Handler:
        handler: Handler = getattr(importlib.import_module(self.module), self.name)
        return handler
