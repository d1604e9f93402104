"""Keyset pagination of message lists on (received_at, id), newest first. Never OFFSET.

The row comparison ``(received_at, id) < (%s, %s)`` lets PostgreSQL seek straight into the
``(folder, received_at DESC, id DESC)`` index, so page 500 costs what page 1 costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import TupleGreaterThan, TupleLessThan

from mailcore.models import Message

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY = (F("received_at"), F("id"))


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Message]
    older: str | None  # cursor of the next page down
    newer: str | None  # cursor of the page above, None on the first page


def encode_cursor(message: Message) -> str:
    micros = (message.received_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{message.id}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    micros, sep, pk = value.partition("_")
    try:
        return _EPOCH + timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError):
        return None


def keyset_page(
    queryset: QuerySet[Message], *, before: str | None, after: str | None, size: int
) -> Page:
    """One page of ``queryset``: below ``before``, or the ``size`` rows just above ``after``."""
    upper = decode_cursor(after)
    if upper is not None:
        rows = list(
            queryset.filter(TupleGreaterThan(_KEY, upper)).order_by("received_at", "id")[: size + 1]
        )
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        return Page(
            rows,
            older=encode_cursor(rows[-1]) if rows else after,
            newer=encode_cursor(rows[0]) if has_newer else None,
        )
    lower = decode_cursor(before)
    if lower is not None:
        queryset = queryset.filter(TupleLessThan(_KEY, lower))
    rows = list(queryset.order_by("-received_at", "-id")[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]
    return Page(
        rows,
        older=encode_cursor(rows[-1]) if has_older else None,
        newer=encode_cursor(rows[0]) if lower is not None and rows else None,
    )


def newer_than(queryset: QuerySet[Message], cursor: str | None, limit: int) -> list[Message]:
    """Rows above ``cursor`` (new mail for a live list), newest first, at most ``limit``."""
    upper = decode_cursor(cursor)
    if upper is None:
        return list(queryset.order_by("-received_at", "-id")[:limit])
    rows = queryset.filter(TupleGreaterThan(_KEY, upper))
    return list(rows.order_by("-received_at", "-id")[:limit])
