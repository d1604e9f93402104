"""/metrics: what it counts after real activity, multiprocess sums, and who may read it."""

from __future__ import annotations

import glob
import logging
import os
import smtplib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from mailcore.models import Delivery, Mailbox
from mailcore.smtp.server import Receiver
from tests.factories import make_email
from tests.mailcore.outbound_peer import PeerHandler
from tests.mailcore.test_outbound_delivery import peer, run, send  # noqa: F401 (fixture)
from tests.ops.scrape import Scrape, scrape
from tests.support import free_port, start_receiver_process

pytestmark = pytest.mark.django_db(transaction=True)


def send_inbound(port: int, message_id: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail(
            "dana@remote.test", ["alice@example.test"], make_email(message_id=f"<{message_id}>")
        )


def test_counts_http_smtp_and_outbound_activity(
    client: Client,
    receiver: Receiver,
    alice: Mailbox,
    peer: PeerHandler,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    before = scrape(client)

    assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/page/12345").status_code == 404
    send_inbound(receiver.port, "metrics-1@remote.test")
    with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("dana@remote.test")
        smtp.rcpt("alice@example.test")
        code, _ = smtp.data(b"x" * 250_000)  # the fixture's limit is 200 000 bytes
    assert code == 552
    message = send(alice, "ok@remote.test", "reject@remote.test")

    queued = scrape(client)
    assert queued.value("mailroom_outbound_queue_depth", queue="queued") == 2
    assert queued.value("mailroom_outbound_queue_depth", queue="deferred") == 0
    Delivery.objects.filter(recipient="ok@remote.test").update(
        next_attempt_at=timezone.now() - timedelta(seconds=120)
    )
    aged = scrape(client)
    assert 120 <= aged.value("mailroom_outbound_queue_oldest_due_seconds", queue="queued") < 180

    run()
    after = scrape(client)

    http = {"route": "healthz", "method": "GET"}
    assert after.delta(before, "mailroom_http_requests_total", **http, status="200") == 1
    assert after.delta(before, "mailroom_http_request_duration_seconds_count", **http) == 1
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert after.delta(before, "mailroom_http_requests_total", **unmatched) == 1
    assert "/no/such/page" not in after.text  # labels are URL names, never raw paths

    assert after.delta(before, "mailroom_smtp_sessions_total", service="mx") == 2
    assert after.delta(before, "mailroom_smtp_messages_accepted_total", service="mx") == 1
    refused = {"service": "mx", "code_class": "5xx"}
    assert after.delta(before, "mailroom_smtp_messages_refused_total", **refused) == 1

    assert after.delta(before, "mailroom_outbound_messages_submitted_total", source="api") == 1
    assert after.delta(before, "mailroom_outbound_deliveries_total", outcome="delivered") == 1
    assert after.delta(before, "mailroom_outbound_deliveries_total", outcome="bounced") == 1
    assert after.delta(before, "mailroom_bounces_total", source="smtp") == 1
    assert after.delta(before, "mailroom_outbound_delivery_latency_seconds_count") == 1
    assert after.value("mailroom_outbound_queue_depth", queue="queued") == 0
    assert after.value("mailroom_outbound_queue_oldest_due_seconds", queue="queued") == 0

    # Log lines carry the ids an operator greps for.
    accepted = [r for r in caplog.records if r.name == "mailcore.smtp.handler"]
    assert [(r.message_id, len(r.queue_id)) for r in accepted] == [  # type: ignore[attr-defined]
        ("metrics-1@remote.test", 12)
    ]
    outcomes = {
        (r.recipient, r.status, r.message_id)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "mailcore.services.outbound.results"
    }
    assert outcomes == {
        ("ok@remote.test", "delivered", message.message_id),
        ("reject@remote.test", "bounced", message.message_id),
    }


def test_every_family_is_exposed_before_its_first_event(client: Client) -> None:
    """Known label values start at 0, so alert ratios have series from the first scrape."""
    families = scrape(client).families
    for name in (
        "mailroom_smtp_sessions",
        "mailroom_smtp_messages_refused",
        "mailroom_outbound_deliveries",
        "mailroom_outbound_delivery_latency_seconds",
        "mailroom_complaints",
        "mailroom_webhook_attempts",
        "mailroom_event_buffer_flushes",
        "mailroom_event_buffer_lag_seconds",
        "mailroom_database_errors",
        "mailroom_redis_errors",
        "mailroom_outbound_queue_depth",
        "mailroom_outbound_queue_oldest_due_seconds",
    ):
        assert name in families


def test_a_scrape_sums_the_counters_of_every_process(
    client: Client, receiver: Receiver, alice: Mailbox
) -> None:
    port = free_port()
    child = start_receiver_process(port)
    try:
        before = scrape(client)
        send_inbound(receiver.port, "in-thread@remote.test")  # this process
        send_inbound(port, "child@remote.test")  # the child process
        after = scrape(client)
    finally:
        child.terminate()
        child.wait(10)
    assert after.delta(before, "mailroom_smtp_messages_accepted_total", service="mx") == 2
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    writers = {path.rsplit("_", 1)[1][:-3] for path in glob.glob(f"{directory}/counter_*.db")}
    assert {str(os.getpid()), str(child.pid)} <= writers
    # The child's samples survive its exit (counters of a dead worker still count).
    assert scrape(client).value("mailroom_smtp_messages_accepted_total", service="mx") == (
        after.value("mailroom_smtp_messages_accepted_total", service="mx")
    )


def test_database_and_redis_errors_are_counted(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    before = scrape(client)
    dead = {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = {"default": dead}  # nothing listens on port 1
    assert client.get("/readyz").json()["status"] == "degraded"
    after = scrape(client)
    assert after.delta(before, "mailroom_redis_errors_total", component="readyz") == 1
    assert after.delta(before, "mailroom_database_errors_total", component="readyz") == 0


class TestAccess:
    def test_loopback_may_scrape(self, client: Client) -> None:
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
        assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200

    def test_other_addresses_and_proxied_requests_may_not(self, client: Client) -> None:
        response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
        assert response.status_code == 403
        assert b"mailroom_" not in response.content
        # Behind a reverse proxy on the same host every client would look like loopback.
        proxied = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4")
        assert proxied.status_code == 403

    def test_configured_networks_may(self, client: Client, settings) -> None:  # type: ignore[no-untyped-def]
        settings.MAILROOM_METRICS_ALLOWED_CIDRS = ["203.0.113.0/24"]
        assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
        assert client.get("/metrics", REMOTE_ADDR="198.51.100.1").status_code == 403
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403

    def test_the_bearer_token_works_from_anywhere(self, client: Client, settings) -> None:  # type: ignore[no-untyped-def]
        settings.MAILROOM_METRICS_TOKEN = "s3cret-for-prometheus"
        remote = {"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}
        good = client.get("/metrics", **remote, HTTP_AUTHORIZATION="Bearer s3cret-for-prometheus")
        assert good.status_code == 200
        assert "mailroom_smtp_sessions" in Scrape(good.content.decode()).families
        for wrong in ("Bearer nope", "Basic s3cret-for-prometheus", ""):
            response = client.get("/metrics", **remote, HTTP_AUTHORIZATION=wrong)
            assert response.status_code == 403

    def test_no_token_configured_means_no_token_accepted(self, client: Client) -> None:
        response = client.get("/metrics", REMOTE_ADDR="198.51.100.1", HTTP_AUTHORIZATION="Bearer ")
        assert response.status_code == 403

    def test_only_get_and_head(self, client: Client) -> None:
        assert client.post("/metrics").status_code == 405
