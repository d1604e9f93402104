"""What full-text search indexes for a message.

Weights carry the field so one GIN index answers field operators: ``A`` sender, ``B``
recipients, ``C`` subject and attachment names, ``D`` body. ``from:alice`` becomes the tsquery
``alice:*A``. Addresses are indexed whole and split into local part and domain labels.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.search import SearchVectorField
from django.db.models import Expression

from mailcore import mime

BODY_LIMIT = 64 * 1024
CONFIG = "simple"


def address_terms(name: str, address: str) -> str:
    local_part, _, domain = address.partition("@")
    return " ".join(
        part for part in (name, address, local_part, domain, *domain.split(".")) if part
    )


def search_texts(parsed: mime.ParsedMessage) -> dict[str, str]:
    sender = parsed.from_address
    recipients = [*parsed.to, *parsed.cc, *parsed.bcc]
    return {
        "A": address_terms(sender.name, sender.address) if sender else "",
        "B": " ".join(address_terms(a.name, a.address) for a in recipients[:100]),
        "C": " ".join([parsed.subject, *(a.filename for a in parsed.attachments)]),
        "D": parsed.text[:BODY_LIMIT],
    }


class WeightedTsvector(Expression):
    """``setweight(to_tsvector('simple', %s), 'A') || ...`` computed by PostgreSQL in the INSERT.

    A hand-written expression: Django's SearchVector composes one sub-expression per part and
    costs about a millisecond of Python per message to compile, more than PostgreSQL spends.
    """

    output_field = SearchVectorField()

    def __init__(self, texts: dict[str, str]) -> None:
        super().__init__()
        self.texts = texts

    # The stub wants tuple params; Django 5.2's own Func.as_sql returns a list, as this does.
    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[str]]:  # type: ignore[override]
        parts = [
            f"setweight(to_tsvector('{CONFIG}'::regconfig, %s), '{weight}')"
            for weight in self.texts
        ]
        return "(" + " || ".join(parts) + ")", [t.replace("\x00", " ") for t in self.texts.values()]


def search_vector_expression(parsed: mime.ParsedMessage) -> WeightedTsvector:
    """An expression computing the message's tsvector in the INSERT itself."""
    return WeightedTsvector(search_texts(parsed))
