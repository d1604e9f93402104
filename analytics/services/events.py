"""The one door through which every producer records an event.

Callers pass plain values. Rows are inserted with one multi-row INSERT inside the caller's
transaction, so an event exists exactly when the state change it describes was committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from analytics.models import Event


@dataclass(frozen=True, slots=True)
class EventInput:
    organization_id: int
    type: str
    message_id: int | None = None
    recipient: str = ""
    tags: Sequence[str] = ()
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None


def record_events(events: Iterable[EventInput]) -> int:
    """Append events; returns how many. Call inside the transaction of the change described."""
    now = timezone.now()
    rows = [
        Event(
            organization_id=event.organization_id,
            type=event.type,
            occurred_at=event.occurred_at or now,
            message_id=event.message_id,
            recipient=event.recipient,
            tags=list(event.tags),
            payload=event.payload,
        )
        for event in events
    ]
    if rows:
        Event.objects.bulk_create(rows)
    return len(rows)


def record_event(organization_id: int, type: str, **fields: Any) -> None:
    """Record one event (see :func:`record_events`)."""
    record_events([EventInput(organization_id=organization_id, type=type, **fields)])
