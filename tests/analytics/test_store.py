from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from analytics.models import Event
from analytics.services import partitions
from analytics.services.events import EventInput, record_event, record_events


def _partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM analytics_event WHERE id = %s", [event_id]
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_events_are_inserted_in_one_statement(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with django_assert_num_queries(1):
        count = record_events(
            EventInput(
                organization_id=7,
                type="delivered",
                recipient=f"r{n}@x.test",
                tags=["a", "b"],
                payload={"n": n},
                occurred_at=moment,
            )
            for n in range(50)
        )
    assert count == 50
    rows = list(Event.objects.order_by("id").values_list("recipient", "tags", "payload"))
    assert rows[0] == ("r0@x.test", ["a", "b"], {"n": 0})
    assert len(rows) == 50
    assert record_events([]) == 0


@pytest.mark.django_db
def test_partitions_created_ahead_rows_moved_out_of_default_and_dropped() -> None:
    today = date(2026, 5, 10)
    record_event(1, "opened", occurred_at=datetime(2026, 5, 11, 8, tzinfo=UTC))
    event = Event.objects.get()
    assert _partition_of(event.id) == "analytics_event_default"

    created = partitions.ensure_partitions(today=today, ahead=3)
    assert created == [f"analytics_event_p202605{d:02d}" for d in range(9, 14)]
    assert partitions.ensure_partitions(today=today, ahead=3) == []
    assert _partition_of(event.id) == "analytics_event_p20260511"
    assert Event.objects.count() == 1

    record_event(1, "clicked", occurred_at=datetime(2026, 5, 12, 0, 0, tzinfo=UTC))
    assert _partition_of(Event.objects.get(type="clicked").id) == "analytics_event_p20260512"

    dropped = partitions.drop_expired_partitions(today=today + timedelta(days=13), days=11)
    assert dropped == [
        "analytics_event_p20260509",
        "analytics_event_p20260510",
        "analytics_event_p20260511",
    ]
    assert list(Event.objects.values_list("type", flat=True)) == ["clicked"]
    assert sorted(partitions.existing_partitions()) == [date(2026, 5, 12), date(2026, 5, 13)]


@pytest.mark.django_db
def test_awkward_tags_and_payloads_round_trip() -> None:
    tags = ["a,b", 'quo"te', "back\\slash", "{brace}", "ünïcode", "NULL"]
    payload = {"url": "https://x.test/?a=1&b='2'", "nested": {"n": [1, None, True]}}
    record_event(9, "clicked", tags=tags, payload=payload, recipient="x@y.test")
    event = Event.objects.get()
    assert (event.tags, event.payload, event.recipient) == (tags, payload, "x@y.test")
