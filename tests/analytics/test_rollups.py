from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.models import EventRollup, FillState
from analytics.services import rollups
from analytics.services.events import EventInput, record_events
from analytics.services.stats import event_counts

BASE = datetime(2026, 4, 1, tzinfo=UTC)
TYPES = ["delivered", "bounced", "opened", "clicked"]
DOMAINS = ["a.test", "b.test"]
NOW = BASE + timedelta(days=5)


def _seed(seed: int, count: int = 600) -> None:
    rng = random.Random(seed)
    record_events(
        EventInput(
            organization_id=rng.choice([1, 2]),
            type=rng.choice(TYPES),
            tags=rng.sample(["news", "promo", "tx"], rng.randint(0, 2)),
            payload={"domain": rng.choice(DOMAINS), "reason": rng.choice(["", "userunknown"])},
            occurred_at=BASE + timedelta(seconds=rng.randint(0, 4 * 86400)),
        )
        for _ in range(count)
    )


def _direct(
    org: int, start: datetime, end: datetime, domain: str | None, tag: str | None, resolution: str
) -> dict[tuple[datetime, str], int]:
    sql = (
        "SELECT date_trunc(%s, occurred_at), type, count(*) FROM analytics_event"
        " WHERE organization_id = %s AND occurred_at >= %s AND occurred_at < %s"
    )
    params: list[object] = [resolution, org, start, end]
    if domain:
        sql += " AND payload->>'domain' = %s"
        params.append(domain)
    if tag:
        sql += " AND %s = ANY(tags)"
        params.append(tag)
    with connection.cursor() as cursor:
        cursor.execute(sql + " GROUP BY 1, 2", params)
        return {(b.astimezone(UTC), t): n for b, t, n in cursor.fetchall()}


def _from_stats(rows: list[dict]) -> dict[tuple[datetime, str], int]:
    return {(row["time"], t): n for row in rows for t, n in row["counts"].items() if n}


@pytest.fixture
def seeded(db: None) -> None:
    _seed(1)
    rollups.fill_all_rollups(now=NOW)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start_hour=st.integers(0, 4 * 24),
    hours=st.integers(1, 4 * 24),
    org=st.sampled_from([1, 2]),
    domain=st.sampled_from([None, "a.test"]),
    tag=st.sampled_from([None, "promo"]),
    resolution=st.sampled_from(["hour", "day"]),
)
def test_rollups_equal_direct_count(
    seeded, start_hour, hours, org, domain, tag, resolution
) -> None:  # type: ignore[no-untyped-def]
    start = BASE + timedelta(hours=start_hour)
    end = start + timedelta(hours=hours)
    if resolution == "day":
        start = start.replace(hour=0)
        last = end - timedelta(microseconds=1)
        end = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    rows = event_counts(
        organization_id=org, start=start, end=end, resolution=resolution, domain=domain, tag=tag
    )
    assert _from_stats(rows) == _direct(org, start, end, domain, tag, resolution)
    assert rows[0]["time"] == start


@pytest.mark.django_db
def test_stats_stitch_day_hour_and_minute_rollups() -> None:
    _seed(2, 300)
    now = BASE + timedelta(days=3, hours=5, minutes=30)
    rollups.fill_all_rollups(now=now)
    assert rollups.fill_end("minute") == now.replace(minute=29)  # settle window: 10 s
    assert rollups.fill_end("hour") == now.replace(minute=0)
    assert rollups.fill_end("day") == now.replace(hour=0, minute=0)
    end = now.replace(minute=29)
    rows = event_counts(organization_id=1, start=BASE, end=end, resolution="month")
    expected = _direct(1, BASE, end, None, None, "month")
    assert _from_stats(rows) == expected
    assert sum(expected.values()) > 0
    month_rows = event_counts(
        organization_id=1,
        start=BASE,
        end=end,
        resolution="month",
        event_types=["opened", "complained"],
    )
    assert [list(r["counts"]) for r in month_rows] == [["opened", "complained"]]
    assert month_rows[0]["counts"]["complained"] == 0


@pytest.mark.django_db(transaction=True)
def test_fill_resumes_after_interruption(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _seed(3, 400)
    real_fill = rollups._fill_chunk
    calls = {"n": 0}

    def crash_on_third(resolution: str, start: datetime, end: datetime) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        real_fill(resolution, start, end)

    monkeypatch.setattr(rollups, "_fill_chunk", crash_on_third)
    with pytest.raises(RuntimeError):
        rollups.fill_rollup("minute", now=NOW)
    stopped_at = FillState.objects.get(property="rollup:minute").end_time
    assert BASE < stopped_at < NOW
    partial = EventRollup.objects.filter(resolution="minute").count()
    assert partial > 0
    monkeypatch.setattr(rollups, "_fill_chunk", real_fill)
    rollups.fill_all_rollups(now=NOW)
    assert rollups.fill_end("minute") == NOW.replace(second=0) - timedelta(minutes=1)
    rows = event_counts(
        organization_id=2, start=BASE, end=BASE + timedelta(days=4), resolution="day"
    )
    assert _from_stats(rows) == _direct(2, BASE, BASE + timedelta(days=4), None, None, "day")
    # Running again changes nothing.
    before = sorted(EventRollup.objects.values_list("resolution", "bucket", "type", "tag", "count"))
    assert rollups.fill_all_rollups(now=NOW) == {"minute": 0, "hour": 0, "day": 0}
    after = sorted(EventRollup.objects.values_list("resolution", "bucket", "type", "tag", "count"))
    assert before == after


@pytest.mark.django_db
def test_event_counts_refuses_bad_resolutions_and_huge_ranges() -> None:
    with pytest.raises(ValueError, match="resolution"):
        event_counts(organization_id=1, start=BASE, end=NOW, resolution="minute")
    with pytest.raises(ValueError, match="coarser"):
        event_counts(
            organization_id=1, start=BASE, end=BASE + timedelta(days=3000), resolution="hour"
        )
    rows = event_counts(
        organization_id=1,
        start=BASE,
        end=BASE + timedelta(days=2),
        resolution="day",
        event_types=["opened"],
    )
    assert rows == [
        {"time": BASE, "counts": {"opened": 0}},
        {"time": BASE + timedelta(days=1), "counts": {"opened": 0}},
    ]
