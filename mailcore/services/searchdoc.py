"""What full-text search indexes for a message.

Weights carry the field so one GIN index answers field operators: ``A`` sender, ``B``
recipients, ``C`` subject and attachment names, ``D`` body. ``from:alice`` becomes the tsquery
``alice:*A``. Addresses are indexed whole and split into local part and domain labels.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchVector
from django.db.models import Value

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


def search_vector_expression(parsed: mime.ParsedMessage) -> SearchVector:
    """An expression computing the message's tsvector in the INSERT itself."""
    texts = search_texts(parsed)
    vector: SearchVector | None = None
    for weight, text in texts.items():
        part = SearchVector(Value(text.replace("\x00", " ")), weight=weight, config=CONFIG)
        vector = part if vector is None else vector + part  # type: ignore[assignment]
    assert vector is not None
    return vector
