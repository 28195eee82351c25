"""Percentiles and summaries of measured samples (seconds in, milliseconds out).

Percentiles interpolate linearly between the two nearest ranks (NumPy's default), so
the p99 of 20 samples lies between the 19th and the 20th, not on the maximum.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `values`; raises ValueError when empty."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclasses.dataclass(frozen=True)
class Summary:
    """The distribution of a set of durations, in milliseconds."""

    count: int
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of_seconds(cls, samples: Iterable[float]) -> Summary:
        millis = [s * 1e3 for s in samples]
        if not millis:
            raise ValueError("summary of no samples")
        return cls(
            count=len(millis),
            min=min(millis),
            p50=percentile(millis, 50),
            p90=percentile(millis, 90),
            p99=percentile(millis, 99),
            max=max(millis),
            mean=sum(millis) / len(millis),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            **{
                f"{name}_ms": round(getattr(self, name), 3)
                for name in ("min", "p50", "p90", "p99", "max", "mean")
            },
        }

    def line(self) -> str:
        return (
            f"n={self.count} p50={self.p50:.1f} p90={self.p90:.1f} p99={self.p99:.1f} "
            f"max={self.max:.1f} ms"
        )
