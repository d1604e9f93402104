"""The one door through which every producer records an event.

Callers pass plain values. Rows are inserted with one multi-row INSERT inside the caller's
transaction, so an event exists exactly when the state change it describes was committed, and a
producer that records N events in one transaction pays one INSERT for all of them (producers
already batch: inbound group commit, outbound result batches). After the commit the live
per-second counters in Redis are bumped (analytics/services/live.py); a Redis outage only loses
live counts, never events or mail.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from analytics.services import live

COLUMNS = "organization_id, type, occurred_at, message_id, recipient, tags, payload"


@dataclass(frozen=True, slots=True)
class EventInput:
    organization_id: int
    type: str
    message_id: int | None = None
    recipient: str = ""
    tags: Sequence[str] = ()
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None


def _array_literal(tags: Sequence[str]) -> str:
    quoted = (tag[:128].replace("\\", "\\\\").replace('"', '\\"') for tag in tags)
    return "{" + ",".join(f'"{tag}"' for tag in quoted) + "}"


# One statement whatever the batch size: seven array parameters, unnested server-side. The
# query text never changes, so it is parsed once per connection, not once per batch.
INSERT = f"""
INSERT INTO analytics_event ({COLUMNS})
SELECT o, t, at, m, r, tg::varchar(128)[], p::jsonb
FROM unnest(%s::bigint[], %s::varchar[], %s::timestamptz[], %s::bigint[], %s::varchar[],
            %s::text[], %s::text[]) AS u(o, t, at, m, r, tg, p)
"""  # noqa: S608 - constant table and column names only


def record_events(events: Iterable[EventInput]) -> int:
    """Append events; returns how many. Call inside the transaction of the change described.

    One INSERT for the whole batch, then the live counters are bumped after commit.
    """
    now = timezone.now()
    batch = list(events)
    if not batch:
        return 0
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
    for event in batch:
        columns[0].append(event.organization_id)
        columns[1].append(event.type)
        columns[2].append(event.occurred_at or now)
        columns[3].append(event.message_id)
        columns[4].append(event.recipient[:254])
        columns[5].append(_array_literal(event.tags))
        columns[6].append(json.dumps(event.payload, cls=DjangoJSONEncoder))
    with connection.cursor() as cursor:
        cursor.execute(INSERT, list(columns))
    counts = Counter((event.organization_id, event.type) for event in batch)
    transaction.on_commit(lambda: live.bump_counters(counts))
    return len(batch)


def record_event(organization_id: int, type: str, **fields: Any) -> None:
    """Record one event (see :func:`record_events`)."""
    record_events([EventInput(organization_id=organization_id, type=type, **fields)])
