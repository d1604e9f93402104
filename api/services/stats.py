"""Event counts per type and time bucket for the stats endpoints.

Read from the analytics rollups (``analytics.services.stats.event_counts``), about a minute
behind real time, never from raw events. Raises ``ValueError`` for a bad resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from analytics.services.stats import RESOLUTIONS
from analytics.services.stats import event_counts as rollup_counts

__all__ = ["RESOLUTIONS", "event_counts"]


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
