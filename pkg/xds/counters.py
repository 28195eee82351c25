"""Server-wide totals since start; components extend them with their own."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Counters:
    connects: int = 0  # streams served
    disconnects: int = 0
    rejected_streams: int = 0  # refused at their first request
    responses: int = 0
    pushed_responses: int = 0  # responses no request asked for: content changed
    acks: int = 0
    nacks: int = 0
    generate_errors: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))
