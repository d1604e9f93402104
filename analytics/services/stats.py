"""Event counts over time, read from the rollups (never from raw events).

Each query stitches three sources so the answer is complete up to the minute rollup's fill
state: day rows where days are filled, hour rows after that, minute rows after the hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

from analytics.services.rollups import fill_end

RESOLUTIONS = ("hour", "day", "month")
MAX_BUCKETS = 20_000


def _floor(moment: datetime, resolution: str) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if resolution in ("day", "month"):
        moment = moment.replace(hour=0)
    if resolution == "month":
        moment = moment.replace(day=1)
    return moment


def _next(moment: datetime, resolution: str) -> datetime:
    if resolution == "hour":
        return moment + timedelta(hours=1)
    if resolution == "day":
        return moment + timedelta(days=1)
    return (moment.replace(day=28) + timedelta(days=4)).replace(day=1)


def _ceil(moment: datetime, resolution: str) -> datetime:
    floor = _floor(moment, resolution)
    return floor if floor == moment.astimezone(UTC) else _next(floor, resolution)


def _sources(
    resolution: str, start: datetime, end: datetime
) -> list[tuple[str, datetime, datetime]]:
    """(rollup resolution, from, to) pieces covering [start, end) with the coarsest rows filled."""
    minute_end = fill_end("minute") or start
    hour_end = min(fill_end("hour") or start, minute_end)
    day_end = min(fill_end("day") or start, hour_end)
    order = [("hour", hour_end), ("minute", minute_end)]
    if resolution != "hour":
        order.insert(0, ("day", day_end))
    pieces = []
    cursor_time = start
    for source, source_end in order:
        piece_end = min(end, source_end)
        if piece_end > cursor_time:
            pieces.append((source, cursor_time, piece_end))
            cursor_time = piece_end
    return pieces


def event_counts(
    *,
    organization_id: int,
    start: datetime,
    end: datetime,
    resolution: str = "day",
    event_types: Sequence[str] | None = None,
    domain: str | None = None,
    tag: str | None = None,
) -> list[dict[str, Any]]:
    """Counts per UTC bucket and event type in [start, end), widened to whole buckets.

    Returns one dict per bucket, oldest first, zero-filled:
    ``{"time": <aware datetime>, "counts": {"delivered": 12, "opened": 3, ...}}``; ``counts`` has
    every type in ``event_types`` (or every type seen in the range when None). ``domain`` is the
    sending domain's name, ``tag`` one message tag. Complete up to the minute rollup's fill
    state (about a minute behind real time).
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}")
    start, end = _floor(start, resolution), _ceil(end, resolution)
    buckets = []
    moment = start
    while moment < end:
        buckets.append(moment)
        moment = _next(moment, resolution)
        if len(buckets) > MAX_BUCKETS:
            raise ValueError("too many buckets; choose a coarser resolution")
    filters = ["organization_id = %s", "tag = %s"]
    params: list[Any] = [organization_id, tag or ""]
    if event_types:
        filters.append("type = ANY(%s)")
        params.append(list(event_types))
    if domain is not None:
        filters.append("domain = %s")
        params.append(domain.lower())
    pieces = _sources(resolution, start, end)
    rows: list[tuple[datetime, str, int]] = []
    if pieces:
        union = " UNION ALL ".join(
            "SELECT bucket, type, count FROM analytics_eventrollup WHERE resolution = %s"  # noqa: S608
            " AND bucket >= %s AND bucket < %s AND " + " AND ".join(filters)
            for _ in pieces
        )
        all_params: list[Any] = []
        for source, piece_start, piece_end in pieces:
            all_params += [source, piece_start, piece_end, *params]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT date_trunc(%s, bucket) AS b, type, sum(count)::bigint"  # noqa: S608
                f" FROM ({union}) AS r GROUP BY 1, 2",
                [resolution, *all_params],
            )
            rows = cursor.fetchall()
    types = list(event_types) if event_types else sorted({row[1] for row in rows})
    table: dict[datetime, dict[str, int]] = {b: dict.fromkeys(types, 0) for b in buckets}
    for bucket, event_type, count in rows:
        table[bucket.astimezone(UTC)][event_type] = int(count)
    return [{"time": bucket, "counts": table[bucket]} for bucket in buckets]
