"""Native sending: JSON and raw MIME, idempotency, validation, size limit, backlog cap."""

from __future__ import annotations

import base64
import datetime as dt
from email import message_from_bytes, policy

import pytest

from analytics.models import Event
from mailcore.models import Delivery, Mailbox, OutboundMessage
from tests.api.conftest import Keys, client_for, send_json

pytestmark = pytest.mark.django_db


def test_send_json_with_everything(keys: Keys, alice: Mailbox) -> None:
    body = send_json(
        to=["Dest One <one@remote.test>", "two@remote.test"],
        cc="three@remote.test",
        bcc=["hidden@remote.test"],
        html="<p>Hi <b>there</b></p>",
        headers={"X-Campaign": "spring", "Reply-To": "help@example.test"},
        attachments=[
            {
                "filename": "report.csv",
                "content_type": "text/csv",
                "content": base64.b64encode(b"a,b\n1,2\n").decode(),
            },
            {
                "filename": "logo.png",
                "content_type": "image/png",
                "content_id": "logo1",
                "content": base64.b64encode(b"\x89PNG...").decode(),
            },
        ],
        tags=["welcome", "spring"],
        metadata={"user_id": 42, "plan": "pro"},
        send_at="2030-01-02T03:04:05Z",
        track_opens=True,
        track_clicks=False,
    )
    response = client_for(keys.full).post("/api/v1/messages/", body, format="json")
    assert response.status_code == 202, response.content
    message = OutboundMessage.objects.get()
    assert response.json() == {
        "id": message.id,
        "message_id": message.message_id,
        "status": "queued",
    }
    assert message.source == "api"
    assert message.mail_from == "alice@example.test"
    assert message.tags == ["welcome", "spring"]
    assert message.metadata == {"user_id": 42, "plan": "pro"}
    assert message.send_at == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert (message.track_opens, message.track_clicks) == (True, False)
    assert sorted(message.deliveries.values_list("recipient", "status")) == [
        ("hidden@remote.test", "queued"),
        ("one@remote.test", "queued"),
        ("three@remote.test", "queued"),
        ("two@remote.test", "queued"),
    ]
    parsed = message_from_bytes(bytes(message.blob.data), policy=policy.default)
    assert parsed["To"] == "Dest One <one@remote.test>, two@remote.test"
    assert parsed["Cc"] == "three@remote.test"
    assert parsed["Bcc"] is None
    assert parsed["X-Campaign"] == "spring"
    assert parsed["Reply-To"] == "help@example.test"
    files = {p.get_filename(): p.get_content() for p in parsed.iter_attachments()}
    assert files == {"report.csv": "a,b\n1,2\n", "logo.png": b"\x89PNG..."}
    assert parsed.get_body(("html",)).get_content() == "<p>Hi <b>there</b></p>\r\n"
    assert Event.objects.filter(type="sent", message_id=message.id).count() == 4


def test_idempotency_key_gives_same_result_and_no_second_send(keys: Keys, alice: Mailbox) -> None:
    client = client_for(keys.full)
    first = client.post("/api/v1/messages/", send_json(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = client.post("/api/v1/messages/", send_json(), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert OutboundMessage.objects.count() == 1
    assert Delivery.objects.count() == 1
    other = client.post("/api/v1/messages/", send_json(), format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert other.json()["id"] != first.json()["id"]
    assert OutboundMessage.objects.count() == 2


def test_send_raw_mime(keys: Keys, alice: Mailbox) -> None:
    raw = (
        b"From: Alice <alice@example.test>\r\nTo: x@remote.test\r\nBcc: b@remote.test\r\n"
        b"Subject: Raw one\r\n\r\nBody\r\n"
    )
    response = client_for(keys.full).post(
        "/api/v1/messages/raw/",
        {
            "to": ["x@remote.test", "b@remote.test"],
            "mime": base64.b64encode(raw).decode(),
            "tags": ["raw"],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    message = OutboundMessage.objects.get()
    assert (message.mail_from, message.subject, message.tags) == (
        "alice@example.test",
        "Raw one",
        ["raw"],
    )
    assert b"Bcc:" not in bytes(message.blob.data)
    assert sorted(message.deliveries.values_list("recipient", flat=True)) == [
        "b@remote.test",
        "x@remote.test",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": ["a@remote.test"], "text": "x"}, "from"),
        (send_json(to=[]), "to"),
        (send_json(text="", html=""), "text"),
        (
            send_json(attachments=[{"filename": "a", "content": "!!notbase64"}]),
            "attachments.0.content",
        ),  # noqa: E501
        (send_json(send_at="yesterday"), "send_at"),
        (send_json(tags="notalist"), "tags"),
        (send_json(**{"from": "bob@elsewhere.test"}), "from"),
        (send_json(to=["not an address"]), "to"),
        (send_json(headers={"Bad Header": "x"}), "headers"),
        (send_json(headers={"X-A": "line\nbreak"}), "headers"),
        ([1, 2], "non_field_errors"),
    ],
)
def test_bad_input_is_a_400_with_field_errors(keys: Keys, alice: Mailbox, body, field) -> None:  # type: ignore[no-untyped-def]
    response = client_for(keys.full).post("/api/v1/messages/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert OutboundMessage.objects.count() == 0


def test_malformed_json_is_a_400(keys: Keys, alice: Mailbox) -> None:
    response = client_for(keys.full).post(
        "/api/v1/messages/", b"{nope", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_body_size_limit(keys: Keys, alice: Mailbox, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAILROOM_API_MAX_BODY_BYTES = 1000
    response = client_for(keys.full).post(
        "/api/v1/messages/", send_json(text="x" * 2000), format="json"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert OutboundMessage.objects.count() == 0


def test_backlog_cap_answers_503_with_retry_after(keys: Keys, alice: Mailbox, settings) -> None:  # type: ignore[no-untyped-def]
    from api.services import ratelimit

    client = client_for(keys.full)
    settings.MAILROOM_API_BACKLOG_CAP = 2
    ratelimit._backlog_cache[:] = [0.0, False]
    assert (
        client.post(
            "/api/v1/messages/", send_json(to=["a@r.test", "b@r.test"]), format="json"
        ).status_code
        == 202
    )
    ratelimit._backlog_cache[:] = [0.0, False]
    assert client.post("/api/v1/messages/", send_json(), format="json").status_code == 202
    ratelimit._backlog_cache[:] = [0.0, False]
    refused = client.post("/api/v1/messages/", send_json(), format="json")
    assert refused.status_code == 503
    assert refused["Retry-After"] == "30"
    assert refused.json()["error"]["code"] == "backlog_full"
    mailgun = client.post(
        "/v3/example.test/messages", {"from": "alice@example.test", "to": "x@r.test", "text": "t"}
    )
    assert mailgun.status_code == 503
    assert mailgun.json() == {"message": "The outbound queue is full; retry later."}
    assert OutboundMessage.objects.count() == 2
    assert client.get("/api/v1/messages/").status_code == 200  # reads are not capped
    ratelimit._backlog_cache[:] = [0.0, False]


def test_message_detail_shows_per_recipient_status(keys: Keys, alice: Mailbox) -> None:
    client = client_for(keys.full)
    sent = client.post("/api/v1/messages/", send_json(to=["a@r.test", "b@r.test"]), format="json")
    Delivery.objects.filter(recipient="b@r.test").update(status="bounced", reply_code=550)
    detail = client.get(f"/api/v1/messages/{sent.json()['id']}/").json()
    assert [(d["recipient"], d["status"], d["reply_code"]) for d in detail["deliveries"]] == [
        ("a@r.test", "queued", None),
        ("b@r.test", "bounced", 550),
    ]
    listing = client.get("/api/v1/messages/?limit=1").json()
    assert [m["id"] for m in listing["items"]] == [sent.json()["id"]]
    assert listing["next"] == ""
