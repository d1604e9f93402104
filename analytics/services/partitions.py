"""Daily partitions of analytics_event: created ahead, dropped after the retention period.

Partitions are named ``analytics_event_pYYYYMMDD`` and cover one UTC day. A DEFAULT partition
(created by the migration) catches rows no daily partition covers, so a late maintenance run
never makes a producer fail; when the daily partition for such rows is created, they are moved
out of DEFAULT in the same transaction (PostgreSQL refuses to attach a range that DEFAULT holds).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

PARENT = "analytics_event"
NAME = re.compile(r"^analytics_event_p(\d{8})$")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def existing_partitions() -> dict[date, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = {}
    for name in names:
        match = NAME.match(name)
        if match:
            found[datetime.strptime(match.group(1), "%Y%m%d").date()] = name  # noqa: DTZ007
    return found


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def create_partition(day: date) -> bool:
    """Create the partition of one day (moving its rows out of DEFAULT); False if it existed."""
    if day in existing_partitions():
        return False
    name = partition_name(day)
    start, end = _bounds(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {PARENT}_default IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {PARENT}_default WHERE occurred_at >= %s"  # noqa: S608
            f" AND occurred_at < %s RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
    return True


def ensure_partitions(*, today: date | None = None, ahead: int | None = None) -> list[str]:
    """Create the partitions of yesterday, today and ``ahead`` days; returns those created."""
    today = today or timezone.now().astimezone(UTC).date()
    ahead = settings.MAILROOM_EVENT_PARTITIONS_AHEAD if ahead is None else ahead
    return [
        partition_name(today + timedelta(days=offset))
        for offset in range(-1, ahead + 1)
        if create_partition(today + timedelta(days=offset))
    ]


def drop_expired_partitions(*, today: date | None = None, days: int | None = None) -> list[str]:
    """Drop the daily partitions entirely older than the retention period; returns their names."""
    today = today or timezone.now().astimezone(UTC).date()
    days = settings.MAILROOM_EVENT_RETENTION_DAYS if days is None else days
    cutoff = today - timedelta(days=days)
    dropped = []
    for day, name in sorted(existing_partitions().items()):
        if day < cutoff:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE {name}")
            dropped.append(name)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {PARENT}_default WHERE occurred_at < %s",  # noqa: S608 - constant name
            [_bounds(cutoff)[0]],
        )
    return dropped


def maintain_partitions() -> dict[str, list[str]]:
    """Create partitions ahead; dropping expired ones is the retention run's job (it logs it,
    see ``mailcore/services/retention.py``)."""
    return {"created": ensure_partitions()}
