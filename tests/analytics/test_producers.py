"""Every producer's events land once each, and live counters move only after commit."""

from __future__ import annotations

import pytest
from django.db import transaction

from analytics.models import Event
from analytics.services import live
from analytics.services.events import record_event
from mailcore.models import Delivery, Mailbox
from mailcore.services.outbound import submit_outbound
from tests.factories import deliver, make_email


def _events() -> list[tuple[str, str]]:
    return list(Event.objects.order_by("id").values_list("type", "recipient"))


@pytest.mark.django_db
def test_inbound_delivery_records_one_received_event(alice: Mailbox) -> None:
    outcome = deliver(make_email(), "alice@example.test")
    assert _events() == [("received", "alice@example.test")]
    event = Event.objects.get()
    assert event.organization_id == alice.organization_id
    assert event.message_id == outcome.message_ids[0]
    assert event.payload["from"] == "dana@remote.test"


@pytest.mark.django_db
def test_outbound_local_delivery_records_sent_then_delivered(  # type: ignore[no-untyped-def]
    alice: Mailbox, bob: Mailbox, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = submit_outbound(
            organization_id=alice.organization_id,
            mail_from="alice@example.test",
            recipients=["bob@example.test"],
            raw=make_email(sender="alice@example.test", to="bob@example.test"),
            source="api",
            tags=["welcome"],
        )
    delivery = Delivery.objects.get(message=message)
    assert delivery.status == "delivered"
    outbound = list(
        Event.objects.filter(message_id=message.id).order_by("id").values_list("type", "recipient")
    )
    assert outbound == [("sent", "bob@example.test"), ("delivered", "bob@example.test")]
    assert Event.objects.filter(type="received").count() == 1  # bob's inbox copy
    outbound_tags = Event.objects.filter(message_id=message.id).exclude(type="received")
    assert list(outbound_tags.values_list("tags", flat=True)) == [["welcome"], ["welcome"]]


@pytest.mark.django_db(transaction=True)
def test_live_counters_move_after_commit_only() -> None:
    now = 1_800_000_000.0
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event(5, "delivered")
        raise RuntimeError("rolled back")
    assert Event.objects.count() == 0
    with transaction.atomic():
        record_event(5, "delivered")
        record_event(5, "opened")
        assert live.read_last_hour("5", int(now)) == {}
    assert Event.objects.count() == 2
    import time

    second = int(time.time())
    hour = live.read_last_hour("5", second)
    assert hour == {"delivered": 1, "opened": 1}
    assert live.read_last_hour("all", second) == {"delivered": 1, "opened": 1}
    assert live.active_organizations(second) == [5]
