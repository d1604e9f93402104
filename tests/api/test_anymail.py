"""django-anymail's Mailgun backend pointed at Mailroom over real HTTP (live server), delivered
through the outbound dispatcher to a local SMTP peer; anymail's Mailgun tracking webhook view
verifying the webhooks Mailroom signs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.message import AnymailMessage
from anymail.signals import tracking
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from django.core import mail
from django.test import RequestFactory

from analytics.models import Event
from api.models import WebhookEndpoint
from api.services import webhooks
from api.services.keys import create_api_key
from mailcore.models import Mailbox, OutboundMessage
from mailcore.services.outbound.delivery import DispatchOptions, run_dispatcher
from tests.mailcore.outbound_peer import Peer, PeerHandler


@pytest.fixture
def peer(settings) -> Iterator[PeerHandler]:  # type: ignore[no-untyped-def]
    server = Peer().start()
    settings.MAILROOM_RELAY_HOST = server.address
    settings.MAILROOM_SMTP_CLIENT_TIMEOUT = 5
    yield server.handler
    server.stop()


@pytest.fixture
def anymail_to_mailroom(settings, live_server, alice: Mailbox) -> str:  # type: ignore[no-untyped-def]
    key = create_api_key(organization_id=alice.organization_id).secret
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {"MAILGUN_API_KEY": key, "MAILGUN_API_URL": live_server.url + "/v3"}
    return key


@pytest.mark.django_db(transaction=True)
def test_anymail_mailgun_backend_end_to_end(anymail_to_mailroom: str, peer: PeerHandler) -> None:
    message = AnymailMessage(
        subject="Report for %recipient.name%",
        body="Hello %recipient.name%, your code is %recipient.code%.",
        from_email="Alice <alice@example.test>",
        to=["ann@remote.test", "Ben <ben@remote.test>"],
        tags=["reports", "weekly"],
        metadata={"campaign": "w48"},
        merge_metadata={"ann@remote.test": {"user": "1"}, "ben@remote.test": {"user": "2"}},
        merge_data={
            "ann@remote.test": {"name": "Ann", "code": "A1"},
            "ben@remote.test": {"name": "Ben", "code": "B2"},
        },
        track_opens=True,
        headers={"X-Report": "weekly"},
    )
    message.attach_alternative("<p>Hi %recipient.name%</p>", "text/html")
    message.attach("data.csv", "a,b\n1,2\n", "text/csv")
    assert message.send() == 1
    status = message.anymail_status
    assert status.status == {"queued"}
    sent = list(OutboundMessage.objects.order_by("id"))
    assert len(sent) == 2  # batch send: one message per recipient
    assert status.message_id == f"<{sent[0].message_id}>"
    assert [m.metadata for m in sent] == [
        {"campaign": "w48", "user": "1"},
        {"campaign": "w48", "user": "2"},
    ]
    assert [m.tags for m in sent] == [["reports", "weekly"]] * 2
    assert [m.track_opens for m in sent] == [True, True]
    assert [m.subject for m in sent] == ["Report for Ann", "Report for Ben"]
    assert [list(m.deliveries.values_list("recipient", "status")) for m in sent] == [
        [("ann@remote.test", "queued")],
        [("ben@remote.test", "queued")],
    ]
    stats = run_dispatcher(DispatchOptions(idle_seconds=0, rand=lambda: 0.5))
    assert stats.delivered == 2
    by_rcpt = {t.recipients[0]: t for t in peer.transactions}
    assert sorted(by_rcpt) == ["ann@remote.test", "ben@remote.test"]
    parsed = message_from_bytes(by_rcpt["ben@remote.test"].data, policy=policy.default)
    assert parsed["Subject"] == "Report for Ben"
    assert parsed["To"] == "Ben <ben@remote.test>"
    assert parsed["X-Report"] == "weekly"
    assert parsed.get_body(("plain",)).get_content().strip() == "Hello Ben, your code is B2."
    html = parsed.get_body(("html",)).get_content().strip()
    assert html.startswith("<p>Hi Ben</p>")
    assert "/t/o/" in html  # o:tracking-opens added the open pixel
    files = {p.get_filename(): p.get_content() for p in parsed.iter_attachments()}
    assert files == {"data.csv": "a,b\n1,2\n"}
    assert sorted(
        OutboundMessage.objects.filter(deliveries__status="delivered").values_list("id", flat=True)
    ) == [m.id for m in sent]


@pytest.mark.django_db(transaction=True)
def test_anymail_errors_come_back_as_mailgun_errors(anymail_to_mailroom: str) -> None:
    from anymail.exceptions import AnymailAPIError

    message = AnymailMessage(subject="x", body="y", from_email="eve@unknown.test", to=["a@r.test"])
    with pytest.raises(AnymailAPIError) as caught:
        message.send()
    assert caught.value.status_code == 404
    assert caught.value.response.json() == {"message": "No such domain."}
    assert OutboundMessage.objects.count() == 0
    assert len(mail.outbox) == 0


class Receiver:
    """Calls anymail's view with exactly the body and headers Mailroom POSTs."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.events: list[Any] = []
        self.posts: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> webhooks.PostResult:
        self.posts.append((body, headers))
        request = RequestFactory().post(
            "/anymail/mailgun/tracking/", data=body, content_type=headers["Content-Type"]
        )
        response = MailgunTrackingWebhookView.as_view()(request)
        return webhooks.PostResult(response.status_code, "", 1)


@pytest.mark.django_db
def test_anymail_tracking_view_verifies_mailroom_webhooks(
    alice: Mailbox,
    settings,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    endpoint = webhooks.create_endpoint(
        alice.organization_id, "https://hooks.remote.test/mg", format="mailgun"
    )
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": endpoint.signing_key}
    receiver = Receiver(settings)
    monkeypatch.setattr(webhooks, "post", receiver)  # the HTTP hop only; the view is real
    received: list[Any] = []

    def on_tracking(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
        received.append(event)

    tracking.connect(on_tracking)
    try:
        from mailcore.services.outbound import submit_outbound
        from tests.factories import make_email

        sent = submit_outbound(
            organization_id=alice.organization_id,
            mail_from="alice@example.test",
            recipients=["ann@remote.test"],
            raw=make_email(sender="alice@example.test"),
            source="api",
            tags=["t1"],
            metadata={"order": "17"},
        )
        assert webhooks.deliver_endpoint(endpoint.id) == 1
        # A repeated run finds nothing new (the cursor moved).
        WebhookEndpoint.objects.filter(id=endpoint.id).update(next_attempt_at=endpoint.created_at)
        assert webhooks.deliver_endpoint(endpoint.id) == 0
        # A forged signature is refused by anymail.
        body, headers = receiver.posts[0]
        forged = body.replace(b'"signature": "', b'"signature": "0', 1)
        request = RequestFactory().post("/x", data=forged, content_type="application/json")
        with pytest.raises(AnymailWebhookValidationFailure):
            MailgunTrackingWebhookView.as_view()(request)
    finally:
        tracking.disconnect(on_tracking)
    assert len(received) == 1
    event = received[0]
    assert event.event_type == "queued"
    assert event.message_id == f"<{sent.message_id}>"
    assert event.recipient == "ann@remote.test"
    assert event.tags == ["t1"]
    assert event.metadata == {"order": "17"}
    # anymail's event id is the signature token: stable for an event across retries.
    event_row = Event.objects.get(type="sent")
    retry_body, _ = webhooks.build_request(endpoint, {}, event_row.id, now=0)
    assert json.loads(retry_body)["signature"]["token"] == event.event_id
    assert len(event.event_id) == 50
