"""Webhook delivery to a real HTTP server on 127.0.0.1: signing, order, retries, 406, disable."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from analytics.models import Event
from analytics.services.events import record_event
from api.models import WebhookDelivery, WebhookEndpoint
from api.services.webhooks import create_endpoint, deliver_endpoint
from api.tasks import deliver_webhooks
from mailcore.models import Mailbox
from tests.api.conftest import Keys, client_for

pytestmark = pytest.mark.django_db


class Sink:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.codes: list[int] = []  # replies to give, in order; then 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.requests.append((dict(self.headers), body))
                self.send_response(sink.codes.pop(0) if sink.codes else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_native_webhooks_are_signed_and_in_order(
    alice: Mailbox, charlie: Mailbox, sink: Sink
) -> None:
    endpoint = create_endpoint(
        alice.organization_id, sink.url, event_types=["delivered", "bounced"]
    )
    record_event(
        alice.organization_id, "delivered", recipient="a@r.test", payload={"domain": "example.test"}
    )
    record_event(alice.organization_id, "opened", recipient="a@r.test")  # not subscribed
    record_event(charlie.organization_id, "delivered", recipient="c@r.test")  # other tenant
    record_event(alice.organization_id, "bounced", recipient="b@r.test")
    with override_settings(MAILROOM_API_WEBHOOK_SETTLE_SECONDS=60):
        assert deliver_webhooks() == 0  # too fresh: a lower id might still commit
    assert sink.requests == []
    WebhookEndpoint.objects.update(next_attempt_at=timezone.now())
    assert deliver_webhooks() == 2
    assert [json.loads(body)["recipient"] for _, body in sink.requests] == ["a@r.test", "b@r.test"]
    headers, body = sink.requests[0]
    timestamp = headers["X-Mailroom-Timestamp"]
    expected = hmac.new(
        endpoint.signing_key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Mailroom-Signature"] == f"t={timestamp},v1={expected}"
    assert headers["X-Mailroom-Event-Id"] == str(json.loads(body)["id"])
    assert json.loads(body)["type"] == "delivered"
    endpoint.refresh_from_db()
    assert endpoint.last_event_id == max(WebhookDelivery.objects.values_list("event_id", flat=True))
    assert WebhookDelivery.objects.filter(is_success=True).count() == 2
    attempts = Event.objects.filter(type="webhook_delivered").order_by("id")
    assert [(e.recipient, e.payload["status_code"]) for e in attempts] == [
        ("a@r.test", 200),
        ("b@r.test", 200),
    ]
    WebhookEndpoint.objects.update(next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    with override_settings(MAILROOM_API_WEBHOOK_SETTLE_SECONDS=0):
        assert deliver_endpoint(endpoint.id, now=timezone.now() + dt.timedelta(minutes=5)) == 0
    assert len(sink.requests) == 2  # webhook_* events are recorded, never posted


def test_failures_back_off_406_gives_up_and_persistent_failure_disables(
    alice: Mailbox,
    sink: Sink,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.MAILROOM_API_WEBHOOK_DISABLE_AFTER = 3600
    endpoint = create_endpoint(alice.organization_id, sink.url)
    record_event(alice.organization_id, "delivered", recipient="one@r.test")
    record_event(alice.organization_id, "delivered", recipient="two@r.test")
    now = timezone.now()
    sink.codes = [500]
    assert deliver_endpoint(endpoint.id, now=now) == 0
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.is_active) == (1, True)
    assert endpoint.next_attempt_at == now + dt.timedelta(seconds=30)
    assert deliver_endpoint(endpoint.id, now=now) == 0  # not due yet: no request
    assert len(sink.requests) == 1
    sink.codes = [406]  # "not acceptable": stop retrying this event, go on
    later = now + dt.timedelta(seconds=31)
    assert deliver_endpoint(endpoint.id, now=later) == 2
    assert [json.loads(b)["recipient"] for _, b in sink.requests] == [
        "one@r.test",
        "one@r.test",
        "two@r.test",
    ]
    assert list(WebhookDelivery.objects.order_by("id").values_list("status_code", "attempt")) == [
        (500, 1),
        (406, 2),
        (200, 1),
    ]
    assert list(
        Event.objects.filter(type__startswith="webhook_")
        .order_by("id")
        .values_list("type", flat=True)
    ) == ["webhook_failed", "webhook_failed", "webhook_delivered"]
    # Persistent failure: after DISABLE_AFTER of failing, the endpoint is disabled with a reason.
    record_event(alice.organization_id, "delivered", recipient="three@r.test")
    sink.codes = [503] * 10
    start = later + dt.timedelta(seconds=1)
    deliver_endpoint(endpoint.id, now=start)
    WebhookEndpoint.objects.filter(id=endpoint.id).update(next_attempt_at=start)
    deliver_endpoint(endpoint.id, now=start + dt.timedelta(hours=2))
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert endpoint.consecutive_failures == 2
    assert "after 2 consecutive failed attempts" in endpoint.disabled_reason
    assert "HTTP 503" in endpoint.disabled_reason
    assert deliver_endpoint(endpoint.id, now=start + dt.timedelta(hours=3)) == 0


def test_webhook_api_test_and_log(keys: Keys, alice: Mailbox, sink: Sink) -> None:
    client = client_for(keys.full)
    created = client.post(
        "/api/v1/webhooks/",
        {"url": sink.url, "format": "mailgun", "event_types": ["delivered"]},
        format="json",
    )
    assert created.status_code == 201
    hook = created.json()
    assert len(hook["signing_key"]) == 64
    assert "signing_key" not in client.get(f"/api/v1/webhooks/{hook['id']}/").json()
    tested = client.post(f"/api/v1/webhooks/{hook['id']}/test/")
    assert tested.json()["status_code"] == 200
    assert tested.json()["is_test"] is True
    body = json.loads(sink.requests[0][1])
    assert set(body) == {"signature", "event-data"}
    assert body["event-data"]["event"] == "delivered"
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()["items"]
    assert [(d["event_type"], d["status_code"], d["is_test"]) for d in log] == [
        ("delivered", 200, True)
    ]
    bad = client.post(
        "/api/v1/webhooks/", {"url": "ftp://x", "event_types": ["nope"]}, format="json"
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"url"}
    assert WebhookEndpoint.objects.count() == 1
