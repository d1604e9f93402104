"""Events (filters, cursor pages, Mailgun shape), stats, and mailbox reading/changing."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.services.events import EventInput, record_events
from mailcore.models import Folder, Mailbox, Message
from tests.api.conftest import Keys, client_for
from tests.factories import deliver, make_email

pytestmark = pytest.mark.django_db
DAY = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def events(alice: Mailbox, charlie: Mailbox) -> None:
    org = alice.organization_id
    record_events(
        [
            EventInput(
                org,
                "sent",
                7,
                "a@r.test",
                ["news"],
                {"domain": "example.test", "message_id": "m7@example.test"},
                DAY,
            ),
            EventInput(
                org,
                "delivered",
                7,
                "a@r.test",
                ["news"],
                {
                    "domain": "example.test",
                    "message_id": "m7@example.test",
                    "code": 250,
                    "reply": "250 ok",
                },
                DAY + dt.timedelta(minutes=1),
            ),
            EventInput(
                org,
                "bounced",
                8,
                "b@r.test",
                [],
                {"domain": "example.test", "code": 550, "reason": "bad-mailbox"},
                DAY + dt.timedelta(hours=1),
            ),
            EventInput(
                org,
                "opened",
                7,
                "a@r.test",
                ["news"],
                {"domain": "example.test"},
                DAY + dt.timedelta(days=1),
            ),
            EventInput(charlie.organization_id, "sent", 9, "c@r.test", [], {}, DAY),
        ]
    )


def test_events_filters_and_cursor(keys: Keys, events: None) -> None:
    client = client_for(keys.full)
    page1 = client.get("/api/v1/events/?limit=2").json()
    assert [e["type"] for e in page1["items"]] == ["opened", "bounced"]
    page2 = client.get(f"/api/v1/events/?limit=2&cursor={page1['next']}").json()
    assert [e["type"] for e in page2["items"]] == ["delivered", "sent"]
    assert page2["next"] == ""

    def types(query: str) -> list[str]:  # noqa: E306
        return [e["type"] for e in client.get(f"/api/v1/events/?{query}").json()["items"]]

    assert types("type=sent&type=opened") == ["opened", "sent"]
    assert types("recipient=b@r.test") == ["bounced"]
    assert types("tag=news&ascending=true") == ["sent", "delivered", "opened"]
    assert types("message=m7@example.test") == ["delivered", "sent"]
    assert types("message=8") == ["bounced"]
    assert types("begin=2026-03-10T10:00:00Z&end=2026-03-11T00:00:00Z") == ["bounced"]
    for bad in ("type=nope", "cursor=zzz", "begin=yesterday", "limit=0"):
        response = client.get(f"/api/v1/events/?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid"


def test_mailgun_events_shape(keys: Keys, events: None) -> None:
    response = client_for(keys.full, basic=True).get("/v3/example.test/events?event=failed&limit=5")
    assert response.status_code == 200
    (item,) = response.json()["items"]
    assert item["event"] == "failed"
    assert item["severity"] == "permanent"
    assert item["reason"] == "bounce"
    assert item["recipient"] == "b@r.test"
    assert item["delivery-status"] == {"code": 550, "message": "", "description": "bad-mailbox"}
    assert item["timestamp"] == (DAY + dt.timedelta(hours=1)).timestamp()
    paged = client_for(keys.full).get("/v3/example.test/events?limit=1").json()
    assert paged["items"][0]["event"] == "opened"
    assert "page=" in paged["paging"]["next"]
    assert client_for(keys.full).get("/v3/example.test/events?event=x").json() == {
        "message": "'event' parameter is not valid"
    }


def test_stats_native_and_mailgun(keys: Keys, events: None) -> None:
    from analytics.services.rollups import fill_all_rollups

    fill_all_rollups(now=DAY + dt.timedelta(days=3))
    client = client_for(keys.full)
    native = client.get(
        "/api/v1/stats/?start=2026-03-10T00:00:00Z&end=2026-03-12T00:00:00Z&resolution=day"
        "&type=sent&type=delivered&type=opened"
    ).json()
    assert [(s["time"][:10], s["counts"]) for s in native["stats"]] == [
        ("2026-03-10", {"delivered": 1, "opened": 0, "sent": 1}),
        ("2026-03-11", {"delivered": 0, "opened": 1, "sent": 0}),
    ]
    mailgun = client.get(
        "/v3/example.test/stats/total?event=accepted&event=failed&resolution=day"
        "&start=Tue, 10 Mar 2026 00:00:00 GMT&end=Wed, 11 Mar 2026 00:00:00 GMT"
    ).json()
    assert mailgun["stats"] == [
        {
            "time": "Tue, 10 Mar 2026 00:00:00 GMT",
            "accepted": {"incoming": 0, "outgoing": 1, "total": 1},
            "failed": {
                "permanent": {"bounce": 1, "suppress-bounce": 0, "total": 1},
                "temporary": {"espblock": 0, "total": 0},
            },
        }
    ]
    assert client.get("/api/v1/stats/?resolution=week").status_code == 400


def test_mailbox_listing_search_cursor_and_actions(
    keys: Keys, alice: Mailbox, bob: Mailbox
) -> None:
    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for index in range(5):
        deliver(
            make_email(subject=f"Invoice {index}" if index % 2 == 0 else f"Note {index}"),
            "alice@example.test",
        )
    for index, message in enumerate(Message.objects.filter(mailbox=alice).order_by("id")):
        Message.objects.filter(id=message.id).update(received_at=base + dt.timedelta(hours=index))
    client = client_for(keys.full)
    mailboxes = client.get("/api/v1/mailboxes/").json()["items"]
    assert [m["address"] for m in mailboxes] == ["alice@example.test", "bob@example.test"]
    url = f"/api/v1/mailboxes/{alice.id}/messages/"
    page1 = client.get(url + "?limit=2").json()
    assert [m["subject"] for m in page1["items"]] == ["Invoice 4", "Note 3"]
    page2 = client.get(url + f"?limit=2&cursor={page1['next']}").json()
    assert [m["subject"] for m in page2["items"]] == ["Invoice 2", "Note 1"]
    found = client.get(url + "?q=subject:invoice").json()["items"]
    assert [m["subject"] for m in found] == ["Invoice 4", "Invoice 2", "Invoice 0"]
    assert client.get(url + "?q=is:unread&limit=1").json()["items"][0]["is_seen"] is False
    assert client.get(url + "?q=" + "(" * 3).status_code in (200, 400)
    assert client.get(url + "?cursor=bad").status_code == 400
    target = found[0]["id"]
    archive = Folder.objects.get(mailbox=alice, role="archive")
    changed = client.patch(
        f"/api/v1/mailbox-messages/{target}/",
        {"is_seen": True, "is_flagged": True, "folder_id": archive.id},
        format="json",
    ).json()
    assert (changed["is_seen"], changed["is_flagged"], changed["folder_id"]) == (
        True,
        True,
        archive.id,
    )
    archive.refresh_from_db()
    assert archive.total_count == 1
    bobs_inbox = Folder.objects.get(mailbox=bob, role="inbox")
    refused = client.patch(
        f"/api/v1/mailbox-messages/{target}/", {"folder_id": bobs_inbox.id}, format="json"
    )
    assert refused.status_code == 400
    assert Message.objects.get(id=target).folder_id == archive.id
    raw = client.get(f"/api/v1/mailbox-messages/{target}/raw/")
    assert raw["Content-Type"] == "message/rfc822"
    assert b"Subject: Invoice 4" in raw.content
    assert client.delete(f"/api/v1/mailbox-messages/{target}/").json()["result"] == "trashed"
    assert Message.objects.get(id=target).folder.role == "trash"
    gone = client.delete(f"/api/v1/mailbox-messages/{target}/?permanent=true")
    assert gone.json() == {"id": target, "result": "deleted"}
    assert not Message.objects.filter(id=target).exists()
