"""Product ids as the Bookinfo services accept them in their paths."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")


def parse_product_id(raw: str) -> int | None:
    """The id in `raw` if it is all ASCII digits, else None (the services answer 400)."""
    return int(raw) if _DIGITS.fullmatch(raw) else None
