"""Dashboard, console, stats and timeline pages: who sees what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from analytics.models import Event
from analytics.services import rollups
from analytics.services.events import EventInput, record_events
from mailcore.models import Mailbox, OutboundMessage, User
from mailcore.services.outbound import submit_outbound
from tests.factories import make_email

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _staff(mailbox: Mailbox) -> User:
    mailbox.user.is_staff = True
    mailbox.user.save(update_fields=["is_staff"])
    return mailbox.user


def _sent(alice: Mailbox) -> OutboundMessage:
    return submit_outbound(
        organization_id=alice.organization_id,
        mail_from="alice@example.test",
        recipients=["carol@remote.test"],
        raw=make_email(sender="alice@example.test", to="carol@remote.test", subject="Timeline"),
        source="webmail",
        mailbox_id=alice.id,
    )


def test_dashboard_and_console_are_staff_only(
    alice: Mailbox, bob: Mailbox, charlie: Mailbox
) -> None:
    assert Client().get("/analytics/").status_code == 302  # to the login page
    assert _client(bob.user).get("/analytics/").status_code == 404
    staff = _staff(alice)
    page = _client(staff).get("/analytics/")
    assert page.status_code == 200
    assert f'data-org="{alice.organization_id}"' in page.content.decode()
    assert _client(staff).get(f"/analytics/?org={charlie.organization_id}").status_code == 404
    operator = User.objects.create_superuser("root", password="x")
    assert 'data-org=""' in _client(operator).get("/analytics/").content.decode()
    admin_list = _client(operator).get("/admin/analytics/event/")
    assert admin_list.status_code == 200
    assert 'href="/analytics/"' in admin_list.content.decode()


def test_event_search_filters_within_the_tenant(alice: Mailbox, charlie: Mailbox) -> None:
    record_events(
        [
            EventInput(alice.organization_id, "delivered", 11, "carol@remote.test"),
            EventInput(alice.organization_id, "opened", 11, "carol@remote.test"),
            EventInput(alice.organization_id, "delivered", 12, "dave@remote.test"),
            EventInput(charlie.organization_id, "delivered", 13, "carol@remote.test"),
        ]
    )
    client = _client(_staff(alice))
    page = client.get("/analytics/events/", {"recipient": "Carol@remote.test"})
    rows = page.context["events"]
    assert [(e.type, e.message_id) for e in rows] == [("opened", 11), ("delivered", 11)]
    rows = client.get("/analytics/events/", {"type": "delivered"}).context["events"]
    assert sorted(e.message_id for e in rows) == [11, 12]
    rows = client.get("/analytics/events/", {"message": "12"}).context["events"]
    assert [e.recipient for e in rows] == ["dave@remote.test"]
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert client.get("/analytics/events/", {"start": future}).context["events"] == []


def test_timeline_json_for_the_sender_only(alice: Mailbox, bob: Mailbox, charlie: Mailbox) -> None:
    message = _sent(alice)
    url = f"/analytics/messages/{message.id}/timeline.json"
    body = _client(alice.user).get(url).json()
    assert body["subject"] == "Timeline"
    assert [(e["type"], e["recipient"]) for e in body["events"]] == [("sent", "carol@remote.test")]
    assert _client(bob.user).get(url).status_code == 200  # alice's mailbox is shared with bob
    assert _client(charlie.user).get(url).status_code == 404
    assert _client(alice.user).get("/analytics/messages/999999/timeline.json").status_code == 404
    by_header = f"/analytics/timeline.json?message_id=<{message.message_id}>"
    assert _client(alice.user).get(by_header).json()["message_id"] == message.id
    assert _client(charlie.user).get(by_header).status_code == 404
    assert _client(alice.user).get("/analytics/timeline.json").status_code == 404


def test_stats_json_reads_rollups(alice: Mailbox) -> None:
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    record_events(
        EventInput(
            alice.organization_id,
            "delivered",
            occurred_at=at + timedelta(minutes=n),
            payload={"domain": "example.test"},
        )
        for n in range(5)
    )
    rollups.fill_all_rollups()
    client = _client(_staff(alice))
    body = client.get("/analytics/stats.json", {"resolution": "hour"}).json()
    hits = [b for b in body["buckets"] if b["delivered"]]
    assert hits == [
        {
            "time": at.isoformat(),
            "sent": 0,
            "delivered": 5,
            "bounced": 0,
            "complained": 0,
            "opened": 0,
            "clicked": 0,
        }
    ]
    assert client.get("/analytics/stats/").status_code == 200
    assert Event.objects.count() == 5
