"""The catalog productpage shows: one book, as in Istio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Product:
    id: int
    title: str
    # Trusted markup, written here, never taken from a request or another service.
    description_html: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "descriptionHtml": self.description_html}


PRODUCTS: tuple[Product, ...] = (
    Product(
        id=0,
        title="The Comedy of Errors",
        description_html=(
            '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
            "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
            "shortest and one of his most farcical comedies, with a major part of the humour "
            "coming from slapstick and mistaken identity, in addition to puns and word play."
        ),
    ),
)
