"""Event search for the operator console and the per-message timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.models import Event

MAX_RESULTS = 200


@dataclass(frozen=True, slots=True)
class EventQuery:
    organization_id: int | None = None
    recipient: str = ""
    message_id: int | None = None
    type: str = ""
    start: datetime | None = None
    end: datetime | None = None


def search_events(query: EventQuery, *, limit: int = MAX_RESULTS) -> list[Event]:
    """Newest first. Served by the (org, time), (org, type, time), (org, recipient) and message
    indexes; the time bounds prune partitions."""
    events = Event.objects.all()
    if query.organization_id is not None:
        events = events.filter(organization_id=query.organization_id)
    if query.recipient:
        events = events.filter(recipient=query.recipient.strip().lower())
    if query.message_id is not None:
        events = events.filter(message_id=query.message_id)
    if query.type:
        events = events.filter(type=query.type)
    if query.start:
        events = events.filter(occurred_at__gte=query.start)
    if query.end:
        events = events.filter(occurred_at__lt=query.end)
    return list(events.order_by("-occurred_at", "-id")[: min(limit, MAX_RESULTS)])


def message_timeline(organization_id: int, outbound_message_id: int) -> list[dict[str, Any]]:
    """queued -> sent -> delivered -> opened -> clicked ...: every event of one outbound message."""
    events = Event.objects.filter(
        organization_id=organization_id, message_id=outbound_message_id
    ).exclude(type="received")
    return [
        {
            "type": event.type,
            "occurred_at": event.occurred_at.isoformat(),
            "recipient": event.recipient,
            "detail": _detail(event.payload),
            "machine": bool(event.payload.get("machine")),
        }
        for event in events.order_by("occurred_at", "id")
    ]


def _detail(payload: dict[str, Any]) -> str:
    for key in ("url", "reason", "reply", "diagnostic", "status"):
        if payload.get(key):
            return str(payload[key])[:300]
    return ""
