"""Outbound queue depth and age, for the ``/metrics`` scrape (config/metrics.py).

One statement, two branches, each on a partial index of ``mailcore_delivery``: ``delivery_due``
(``status IN ('queued', 'deferred')``, on ``next_attempt_at``) and ``delivery_lease``
(``status = 'sending'``, on ``leased_until``). Finished rows are in neither, so the cost follows
the backlog, not the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

QUEUES = ("queued", "deferred", "sending")

_SQL = """
SELECT status, count(*),
       COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)
                        FILTER (WHERE next_attempt_at <= now())), 0)
FROM mailcore_delivery WHERE status IN ('queued', 'deferred') GROUP BY status
UNION ALL
SELECT 'sending', count(*),
       COALESCE(EXTRACT(EPOCH FROM now() - min(leased_until)
                        FILTER (WHERE leased_until <= now())), 0)
FROM mailcore_delivery WHERE status = 'sending'
"""


@dataclass(frozen=True, slots=True)
class QueueStat:
    queue: str
    depth: int
    # queued/deferred: how long the longest-waiting due row has been due (0 when none is due);
    # sending: how far the oldest lease has run past its end (a lost worker; 0 when none).
    oldest_due_seconds: float


def outbound_queue_stats() -> list[QueueStat]:
    """Depth and oldest-due age of each queue in :data:`QUEUES` (empty queues included)."""
    with connection.cursor() as cursor:
        cursor.execute(_SQL)
        rows = {status: (count, float(age)) for status, count, age in cursor.fetchall()}
    return [QueueStat(queue, *rows.get(queue, (0, 0.0))) for queue in QUEUES]
