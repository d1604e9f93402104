"""Reading the event table for the API: filters, keyset cursors, native and Mailgun shapes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.models import Event
from mailcore.models import OutboundMessage

# Mailroom event type -> (Mailgun event, severity, reason)
MAILGUN_EVENTS: dict[str, tuple[str, str, str]] = {
    "sent": ("accepted", "", ""),
    "delivered": ("delivered", "", ""),
    "deferred": ("failed", "temporary", "generic"),
    "bounced": ("failed", "permanent", "bounce"),
    "failed": ("failed", "permanent", "generic"),
    "suppressed": ("failed", "permanent", "suppress-bounce"),
    "complained": ("complained", "", ""),
    "opened": ("opened", "", ""),
    "clicked": ("clicked", "", ""),
    "unsubscribed": ("unsubscribed", "", ""),
}
NATIVE_TYPES = [value for value in Event.Type.values if not value.startswith("webhook_")]
MAX_LIMIT = 300


class EventQueryError(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class EventFilter:
    organization_id: int
    begin: datetime | None = None
    end: datetime | None = None
    types: Sequence[str] = ()
    recipient: str = ""
    tag: str = ""
    message_id: str = ""  # outbound message id (digits) or Message-ID
    domain: str = ""
    is_ascending: bool = False


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("e"):
            raise ValueError(cursor)
        return int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise EventQueryError("Invalid cursor.", "cursor") from exc


def list_events(
    query: EventFilter, *, cursor: str = "", limit: int = 100
) -> tuple[list[Event], str]:
    """A page of events, newest first (or oldest first), and the cursor of the next page
    ("" at the end). Keyset on ``id``, which grows with ``occurred_at`` for live events."""
    unknown = sorted(set(query.types) - set(NATIVE_TYPES))
    if unknown:
        raise EventQueryError(f"Unknown event type {unknown[0]!r}.", "type")
    events = Event.objects.filter(organization_id=query.organization_id).exclude(
        type__startswith="webhook_"
    )
    if query.begin:
        events = events.filter(occurred_at__gte=query.begin)
    if query.end:
        events = events.filter(occurred_at__lt=query.end)
    if query.types:
        events = events.filter(type__in=list(query.types))
    if query.recipient:
        events = events.filter(recipient=query.recipient.strip().lower())
    if query.tag:
        events = events.filter(tags__contains=[query.tag])
    if query.domain:
        events = events.filter(payload__domain=query.domain.lower())
    if query.message_id:
        value = query.message_id.strip().strip("<>")
        if value.isdigit():
            events = events.filter(message_id=int(value))
        else:
            events = events.filter(payload__message_id=value)
    if cursor:
        after = decode_cursor(cursor)
        events = events.filter(id__gt=after) if query.is_ascending else events.filter(id__lt=after)
    events = events.order_by("id" if query.is_ascending else "-id")
    limit = max(1, min(limit, MAX_LIMIT))
    page = list(events[: limit + 1])
    next_cursor = encode_cursor(page[limit - 1].id) if len(page) > limit else ""
    return page[:limit], next_cursor


def native_event(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "message": event.message_id,
        "recipient": event.recipient,
        "tags": list(event.tags),
        "payload": event.payload,
    }


def mailgun_events(events: Sequence[Event]) -> list[dict[str, Any]]:
    """Events in Mailgun's ``event-data`` shape (with each message's ``user-variables``)."""
    message_ids = {event.message_id for event in events if event.message_id}
    metadata = dict(
        OutboundMessage.objects.filter(id__in=message_ids).values_list("id", "metadata")
    )
    return [mailgun_event(event, metadata.get(event.message_id) or {}) for event in events]


def mailgun_event(event: Event, user_variables: dict[str, Any]) -> dict[str, Any]:
    name, severity, reason = MAILGUN_EVENTS.get(event.type, (event.type, "", ""))
    payload = event.payload or {}
    data: dict[str, Any] = {
        "id": f"mr-{event.id}",
        "event": name,
        "timestamp": event.occurred_at.timestamp(),
        "recipient": event.recipient,
        "recipient-domain": event.recipient.rpartition("@")[2],
        "tags": list(event.tags),
        "user-variables": user_variables,
        "message": {"headers": {"message-id": payload.get("message_id", "")}},
        "envelope": {"sender": payload.get("from", "")},
        "storage": {},
        "flags": {},
    }
    if severity:
        data["severity"] = severity
        data["reason"] = reason
    if name in ("failed", "delivered"):
        data["delivery-status"] = {
            "code": payload.get("reply_code") or payload.get("code") or 0,
            "message": payload.get("reply", "") or payload.get("diagnostic", ""),
            "description": payload.get("reason", "") or payload.get("description", ""),
        }
    return data
