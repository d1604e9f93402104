"""Minute, hour and day rollups of the event store, filled from a recorded fill state.

zulip's FillState pattern: each resolution remembers ``end_time``, the instant before which all
its buckets are complete. A fill step aggregates one chunk in SQL and advances ``end_time`` in
the same transaction (delete-then-insert the chunk's buckets), so an interrupted fill leaves no
partial chunk and the next run resumes exactly where the last committed chunk ended. Minutes are
aggregated from raw events, hours from minutes, days from hours. Minute buckets are filled only
up to ``now - MAILROOM_ROLLUP_SETTLE_SECONDS`` so events committed a little after they occurred
(producers record inside their transaction) are still counted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import FillState

STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
CHUNK = {"minute": timedelta(hours=1), "hour": timedelta(days=1), "day": timedelta(days=31)}
SOURCE = {"hour": "minute", "day": "hour"}

ROLLUP_COLUMNS = "resolution, bucket, organization_id, type, domain, reason, tag, count"

MINUTES_FROM_EVENTS = f"""
INSERT INTO analytics_eventrollup ({ROLLUP_COLUMNS})
SELECT 'minute', date_trunc('minute', occurred_at), organization_id, type,
       left(coalesce(payload->>'domain', ''), 253), left(coalesce(payload->>'reason', ''), 64),
       '', count(*)
FROM analytics_event WHERE occurred_at >= %(start)s AND occurred_at < %(end)s
GROUP BY 2, 3, 4, 5, 6
UNION ALL
SELECT 'minute', date_trunc('minute', occurred_at), organization_id, type,
       left(coalesce(payload->>'domain', ''), 253), left(coalesce(payload->>'reason', ''), 64),
       t.tag, count(*)
FROM analytics_event
CROSS JOIN LATERAL (SELECT DISTINCT tag FROM unnest(tags) AS tag WHERE tag <> '') AS t
WHERE occurred_at >= %(start)s AND occurred_at < %(end)s AND tags <> '{{}}'
GROUP BY 2, 3, 4, 5, 6, 7
"""  # noqa: S608 - constant table and column names only

COARSER_FROM_FINER = f"""
INSERT INTO analytics_eventrollup ({ROLLUP_COLUMNS})
SELECT %(resolution)s, date_trunc(%(resolution)s, bucket), organization_id, type, domain, reason,
       tag, sum(count)
FROM analytics_eventrollup
WHERE resolution = %(source)s AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY 2, 3, 4, 5, 6, 7
"""  # noqa: S608 - constant table and column names only


def floor_time(moment: datetime, resolution: str) -> datetime:
    moment = moment.astimezone(UTC)
    if resolution == "minute":
        return moment.replace(second=0, microsecond=0)
    if resolution == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def fill_end(resolution: str) -> datetime | None:
    state = FillState.objects.filter(property=f"rollup:{resolution}").first()
    return state.end_time if state else None


def _target(resolution: str, now: datetime) -> datetime:
    if resolution == "minute":
        settle = timedelta(seconds=settings.MAILROOM_ROLLUP_SETTLE_SECONDS)
        return floor_time(now - settle, "minute")
    source_end = fill_end(SOURCE[resolution])
    return floor_time(source_end, resolution) if source_end else floor_time(now, resolution)


def _next_data(resolution: str, start: datetime) -> datetime | None:
    """The first moment at or after ``start`` with anything to aggregate (skips empty gaps).

    Minutes never skip: raw events have no btree on time (BRIN only), so ``min(occurred_at)``
    would scan every later partition; an empty hour chunk costs as little to aggregate.
    """
    if resolution == "minute":
        return start
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(bucket) FROM analytics_eventrollup WHERE resolution = %s AND bucket >= %s",
            [SOURCE[resolution], start],
        )
        return cursor.fetchone()[0]


def _first_data(resolution: str) -> datetime | None:
    """Where a first fill starts: the oldest event (one full scan, once) or source rollup."""
    with connection.cursor() as cursor:
        if resolution == "minute":
            cursor.execute("SELECT min(occurred_at) FROM analytics_event")
        else:
            cursor.execute(
                "SELECT min(bucket) FROM analytics_eventrollup WHERE resolution = %s",
                [SOURCE[resolution]],
            )
        return cursor.fetchone()[0]


def _fill_chunk(resolution: str, start: datetime, end: datetime) -> None:
    with transaction.atomic():
        state = FillState.objects.select_for_update().get(property=f"rollup:{resolution}")
        if state.end_time != start:  # another filler got here first
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM analytics_eventrollup"
                " WHERE resolution = %s AND bucket >= %s AND bucket < %s",
                [resolution, start, end],
            )
            params: dict[str, str | datetime] = {
                "start": start,
                "end": end,
                "resolution": resolution,
            }
            if resolution == "minute":
                cursor.execute(MINUTES_FROM_EVENTS, params)
            else:
                cursor.execute(COARSER_FROM_FINER, {**params, "source": SOURCE[resolution]})
        state.end_time = end
        state.updated_at = timezone.now()
        state.save(update_fields=["end_time", "updated_at"])


def fill_rollup(resolution: str, *, now: datetime | None = None, max_chunks: int = 500) -> int:
    """Advance one resolution's rollup towards now; returns the number of chunks filled."""
    now = now or timezone.now()
    target = _target(resolution, now)
    start = fill_end(resolution)
    if start is None:
        first = _first_data(resolution)
        start = floor_time(first, resolution) if first and first < target else target
        FillState.objects.get_or_create(
            property=f"rollup:{resolution}", defaults={"end_time": start}
        )
    chunks = 0
    while start < target and chunks < max_chunks:
        upcoming = _next_data(resolution, start)
        if upcoming is None or upcoming >= target:
            end = target  # nothing left before the target: jump the empty gap
        else:
            begin = max(start, floor_time(upcoming, resolution))
            end = min(begin + CHUNK[resolution], target)
        _fill_chunk(resolution, start, end)
        start = end
        chunks += 1
    return chunks


def fill_all_rollups(*, now: datetime | None = None) -> dict[str, int]:
    """Minutes, then hours, then days: what the beat task runs."""
    return {res: fill_rollup(res, now=now) for res in ("minute", "hour", "day")}


def drop_old_minute_rollups(*, now: datetime | None = None) -> int:
    """Minute rows older than MAILROOM_ROLLUP_MINUTE_DAYS go; hours and days remain."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.MAILROOM_ROLLUP_MINUTE_DAYS)
    hour_end = fill_end("hour")
    if hour_end is not None:
        cutoff = min(cutoff, hour_end)  # never drop minutes the hour rollup has not read yet
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM analytics_eventrollup WHERE resolution = 'minute' AND bucket < %s",
            [cutoff],
        )
        return cursor.rowcount
