"""Event counts per type and time bucket for the stats endpoints.

Uses ``analytics.services.stats.event_counts`` (rollups, about a minute behind real time) when
that module exists; otherwise a direct ``COUNT … GROUP BY date_trunc`` over the raw events.
Raises ``ValueError`` for a range the caller must narrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count
from django.db.models.functions import Trunc

from analytics.models import Event

RESOLUTIONS = ("hour", "day", "month")


def event_counts(
    *,
    organization_id: int,
    start: datetime,
    end: datetime,
    resolution: str,
    event_types: Sequence[str] | None = None,
    domain: str | None = None,
    tag: str | None = None,
) -> list[tuple[datetime, str, int]]:
    """``[(bucket start, event type, count)]`` ordered by bucket then type."""
    try:
        from analytics.services.stats import event_counts as rollup_counts  # type: ignore
    except ImportError:
        rollup_counts = None
    if rollup_counts is not None:
        rows = rollup_counts(
            organization_id=organization_id,
            start=start,
            end=end,
            resolution=resolution,
            event_types=event_types,
            domain=domain,
            tag=tag,
        )
        return [(row["time"], type_, int(n)) for row in rows for type_, n in row["counts"].items()]
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}")
    events = Event.objects.filter(
        organization_id=organization_id, occurred_at__gte=start, occurred_at__lt=end
    )
    if event_types:
        events = events.filter(type__in=list(event_types))
    if domain:
        events = events.filter(payload__domain=domain)
    if tag:
        events = events.filter(tags__contains=[tag])
    rows = (
        events.annotate(bucket=Trunc("occurred_at", resolution))
        .values("bucket", "type")
        .annotate(count=Count("id"))
        .order_by("bucket", "type")
    )
    return [(row["bucket"], row["type"], row["count"]) for row in rows]
