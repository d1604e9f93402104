"""Queue and latency figures for the live dashboard, read from the outbound Delivery table.

Cached for a few seconds: the broadcaster asks every second, the database answers every 5.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import connection

QUEUE_CACHE_SECONDS = 5
LATENCY_WINDOW = "5 minutes"


def queue_stats(organization_id: int | None) -> dict[str, Any]:
    """Queue depth, oldest queued age (s) and delivery latency percentiles (s) of the last 5 min."""
    # "%s IS NULL OR" keeps one constant query text for the operators' and a tenant's view.
    params = [organization_id, organization_id]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))"
            " FROM mailcore_delivery WHERE status IN ('queued', 'deferred', 'sending')"
            " AND (%s::bigint IS NULL OR organization_id = %s)",
            params,
        )
        depth, oldest = cursor.fetchone()
        cursor.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
            " (ORDER BY EXTRACT(EPOCH FROM delivered_at - created_at))"
            " FROM mailcore_delivery WHERE delivered_at > now() - %s::interval"
            " AND status = 'delivered' AND (%s::bigint IS NULL OR organization_id = %s)",
            [LATENCY_WINDOW, *params],
        )
        (percentiles,) = cursor.fetchone()
    p50, p95, p99 = percentiles or (None, None, None)
    return {
        "queue_depth": depth,
        "oldest_queued_seconds": round(float(oldest), 1) if oldest is not None else 0.0,
        "latency": {
            "p50": _round(p50),
            "p95": _round(p95),
            "p99": _round(p99),
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def cached_queue_stats(organization_id: int | None) -> dict[str, Any]:
    key = f"live:queue:{organization_id or 'all'}"
    stats = cache.get(key)
    if stats is None:
        stats = queue_stats(organization_id)
        cache.set(key, stats, QUEUE_CACHE_SECONDS)
    return stats
