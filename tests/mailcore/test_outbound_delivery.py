"""Outbound delivery against a real SMTP peer on 127.0.0.1 (aiosmtpd), through the relay setting.

The dispatcher runs in the test's process with an injected clock and jitter; nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import dkim as dkimpy
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone

from analytics.models import Event
from analytics.services.domain_tracking import set_domain_tracking
from mailcore.models import Delivery, DeliveryAttempt, Mailbox, OutboundMessage, Suppression
from mailcore.services.outbound import dkim, submit_outbound, verp
from mailcore.services.outbound.delivery import DispatchOptions, DispatchStats, run_dispatcher
from mailcore.services.outbound.suppression import suppress_address
from tests.factories import make_email
from tests.mailcore.outbound_peer import Peer, PeerHandler, free_port

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self) -> None:
        self.now = timezone.now() + dt.timedelta(seconds=1)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> None:
    dkim._active_cache.clear()


@pytest.fixture
def peer(settings) -> Iterator[PeerHandler]:  # type: ignore[no-untyped-def]
    server = Peer().start()
    settings.MAILROOM_RELAY_HOST = server.address
    settings.MAILROOM_SMTP_CLIENT_TIMEOUT = 5
    yield server.handler
    server.stop()


def send(alice: Mailbox, *recipients: str, raw: bytes | None = None, **kwargs) -> OutboundMessage:  # type: ignore[no-untyped-def]
    return submit_outbound(
        organization_id=alice.organization_id,
        mail_from="alice@example.test",
        recipients=recipients,
        raw=raw or make_email(sender="Alice <alice@example.test>", to=", ".join(recipients)),
        source="api",
        **kwargs,
    )


def run(clock: Clock | None = None, **options) -> DispatchStats:  # type: ignore[no-untyped-def]
    return run_dispatcher(
        DispatchOptions(idle_seconds=0, clock=clock or Clock(), rand=lambda: 0.5, **options)
    )


def statuses(message: OutboundMessage) -> dict[str, str]:
    return dict(message.deliveries.values_list("recipient", "status"))


def events(message: OutboundMessage) -> list[tuple[str, str]]:
    return list(
        Event.objects.filter(message_id=message.id).order_by("id").values_list("type", "recipient")
    )


def test_delivers_with_dkim_verp_and_the_stable_message_id(
    alice: Mailbox, peer: PeerHandler
) -> None:
    key = dkim.create_key(alice.domain, "s1")
    raw = make_email(
        sender="Alice <alice@example.test>",
        to="dana@remote.test",
        message_id="<stable-1@example.test>",
    )
    message = send(alice, "dana@remote.test", raw=raw)

    stats = run()

    assert (stats.claimed, stats.delivered, stats.transactions) == (1, 1, 1)
    delivery = message.deliveries.get()
    assert (delivery.status, delivery.reply_code, delivery.attempt_count) == ("delivered", 250, 1)
    assert delivery.reply == "250 2.0.0 Ok: queued"
    assert delivery.delivered_at is not None and delivery.lease_token == ""
    [transaction] = peer.transactions
    assert transaction.mail_from == verp.return_path(delivery.id, "example.test")
    assert transaction.mail_from == f"bounces+{verp.make_token(delivery.id)}@example.test"
    assert transaction.recipients == ["dana@remote.test"]
    assert message.message_id == "stable-1@example.test"
    assert b"\r\nMessage-ID: <stable-1@example.test>\r\n" in transaction.data
    assert transaction.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        wanted = b"s1._domainkey.example.test"
        return dkim.dns_record_value(key).encode() if name.rstrip(b".") == wanted else None

    assert dkimpy.verify(transaction.data, dnsfunc=dnsfunc) is True
    tampered = transaction.data.replace(b"this is a test", b"this is a fake")
    assert dkimpy.verify(tampered, dnsfunc=dnsfunc) is False
    [attempt] = delivery.attempts.all()
    assert (attempt.outcome, attempt.reply_code, attempt.enhanced_status) == (
        "delivered",
        250,
        "2.0.0",
    )
    assert attempt.remote_host == f"127.0.0.1[127.0.0.1]:{peer_port(transaction, delivery)}"
    assert events(message) == [("sent", "dana@remote.test"), ("delivered", "dana@remote.test")]


def peer_port(transaction, delivery: Delivery) -> int:  # type: ignore[no-untyped-def]
    return int(delivery.attempts.get().remote_host.rsplit(":", 1)[1])


def test_recipients_of_one_message_share_one_transaction(alice: Mailbox, peer: PeerHandler) -> None:
    message = send(
        alice,
        "dana@remote.test",
        "erin@remote.test",
        "reject-frank@remote.test",
        "defer-gus@remote.test",
    )
    clock = Clock()

    run(clock)

    [transaction] = peer.transactions
    assert transaction.recipients == ["dana@remote.test", "erin@remote.test"]
    assert peer.sessions == 1
    first = message.deliveries.get(recipient="dana@remote.test")
    assert transaction.mail_from == verp.return_path(first.id, "example.test")
    assert statuses(message) == {
        "dana@remote.test": "delivered",
        "erin@remote.test": "delivered",
        "reject-frank@remote.test": "bounced",
        "defer-gus@remote.test": "deferred",
    }
    bounced = message.deliveries.get(recipient="reject-frank@remote.test")
    assert (bounced.reply_code, bounced.enhanced_status, bounced.reason) == (
        550,
        "5.1.1",
        "userunknown",
    )
    deferred = message.deliveries.get(recipient="defer-gus@remote.test")
    assert deferred.next_attempt_at == clock.now + dt.timedelta(seconds=60)
    assert deferred.reply == "451 4.3.0 Temporary failure, try again later"
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.source) == (
        "reject-frank@remote.test",
        "bounce",
        "smtp",
    )
    assert suppression.domain_id == alice.domain_id
    assert sorted(events(message)) == sorted(
        [("sent", r) for r in statuses(message)]
        + [
            ("delivered", "dana@remote.test"),
            ("delivered", "erin@remote.test"),
            ("bounced", "reject-frank@remote.test"),
            ("deferred", "defer-gus@remote.test"),
        ]
    )


def test_one_connection_carries_many_messages(alice: Mailbox, peer: PeerHandler) -> None:
    messages = [send(alice, f"user{i}@remote.test") for i in range(6)]

    stats = run(connections=1)

    assert (stats.delivered, stats.connections, stats.transactions) == (6, 1, 6)
    assert peer.sessions == 1
    assert sorted(r for r, _ in peer.received()) == sorted(f"user{i}@remote.test" for i in range(6))
    assert all(statuses(m) == {f"user{i}@remote.test": "delivered"} for i, m in enumerate(messages))


def test_temporary_failures_back_off_then_deliver(alice: Mailbox, peer: PeerHandler) -> None:
    peer.data_reply = "451 4.7.1 Greylisted, try again later"
    message = send(alice, "dana@remote.test")
    clock = Clock()

    run(clock)
    delivery = message.deliveries.get()
    assert (delivery.status, delivery.attempt_count) == ("deferred", 1)
    assert delivery.next_attempt_at == clock.now + dt.timedelta(seconds=60)
    assert (delivery.reply_code, delivery.enhanced_status) == (451, "4.7.1")

    clock.advance(seconds=59)
    assert run(clock).claimed == 0
    clock.advance(seconds=1)
    assert run(clock).deferred == 1
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == clock.now + dt.timedelta(seconds=120)

    peer.data_reply = ""
    clock.advance(seconds=120)
    assert run(clock).delivered == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("delivered", 3)
    assert list(delivery.attempts.order_by("id").values_list("outcome", "reply_code")) == [
        ("deferred", 451),
        ("deferred", 451),
        ("delivered", 250),
    ]
    assert [t for t, _ in events(message)] == ["sent", "deferred", "deferred", "delivered"]
    assert len(peer.transactions) == 1


def test_temporary_failures_become_final_after_the_maximum_age(
    alice: Mailbox, peer: PeerHandler
) -> None:
    peer.data_reply = "452 4.2.2 Mailbox full"
    message = send(alice, "dana@remote.test")
    delivery = message.deliveries.get()
    assert delivery.expires_at == delivery.created_at + dt.timedelta(days=3)
    clock = Clock()

    clock.now = delivery.expires_at - dt.timedelta(seconds=10)
    run(clock)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == ("deferred", delivery.expires_at)

    clock.now = delivery.expires_at
    stats = run(clock)
    delivery.refresh_from_db()
    assert (stats.failed, delivery.status, delivery.reply_code) == (1, "failed", 452)
    assert [t for t, _ in events(message)] == ["sent", "deferred", "failed"]
    assert not Suppression.objects.exists()


def test_suppressed_recipients_are_never_sent_to(alice: Mailbox, peer: PeerHandler) -> None:
    send(alice, "reject-zed@remote.test")
    run()
    assert Suppression.objects.filter(address="reject-zed@remote.test").exists()
    peer.transactions.clear()

    message = send(alice, "reject-zed@remote.test", "dana@remote.test")
    assert statuses(message) == {
        "reject-zed@remote.test": "suppressed",
        "dana@remote.test": "queued",
    }
    assert sorted(events(message)) == [
        ("sent", "dana@remote.test"),
        ("suppressed", "reject-zed@remote.test"),
    ]
    run()
    assert [t.recipients for t in peer.transactions] == [["dana@remote.test"]]
    assert not DeliveryAttempt.objects.filter(
        delivery__recipient="reject-zed@remote.test", delivery__message=message
    ).exists()


def test_an_address_suppressed_while_queued_is_not_sent_to(
    alice: Mailbox, peer: PeerHandler
) -> None:
    message = send(alice, "dana@remote.test")
    suppress_address(alice.domain, "Dana@Remote.test")

    stats = run()

    assert (stats.claimed, peer.transactions) == (0, [])
    assert statuses(message) == {"dana@remote.test": "suppressed"}
    assert events(message) == [("sent", "dana@remote.test"), ("suppressed", "dana@remote.test")]


def test_a_dropped_connection_defers(alice: Mailbox, peer: PeerHandler) -> None:
    message = send(alice, "drop-dana@remote.test")
    run()
    delivery = message.deliveries.get()
    assert (delivery.status, delivery.reply_code) == ("deferred", None)
    assert "closed the connection" in delivery.reply
    assert peer.transactions == []


def test_a_peer_slower_than_the_timeout_defers(alice: Mailbox, peer: PeerHandler, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAILROOM_SMTP_CLIENT_TIMEOUT = 0.5
    peer.slow_seconds = 1.5
    message = send(alice, "slow-dana@remote.test")
    run()
    delivery = message.deliveries.get()
    assert delivery.status == "deferred"
    assert "no reply" in delivery.reply


def test_a_refused_connection_defers_every_job_of_the_lane(alice: Mailbox, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAILROOM_RELAY_HOST = f"127.0.0.1:{free_port()}"
    messages = [send(alice, f"user{i}@remote.test") for i in range(3)]
    stats = run(connections=1)
    assert (stats.deferred, stats.connections) == (3, 0)
    for message in messages:
        delivery = message.deliveries.get()
        assert delivery.status == "deferred" and "connect to 127.0.0.1" in delivery.reply


def test_bare_line_feeds_are_normalized_and_dots_stuffed(alice: Mailbox, peer: PeerHandler) -> None:
    raw = (
        b"From: alice@example.test\nTo: dana@remote.test\nSubject: dots\nMessage-ID: <d@x>\n\n"
        b".leading dot\nline\r\n.\r\nafter a lone dot\rend"
    )
    send(alice, "dana@remote.test", raw=raw)
    run()
    [transaction] = peer.transactions
    body = transaction.data.split(b"\r\n\r\n", 1)[1]
    assert body == b".leading dot\r\nline\r\n.\r\nafter a lone dot\r\nend\r\n"
    assert b"\n" not in transaction.data.replace(b"\r\n", b"")


def test_opportunistic_starttls(alice: Mailbox, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = Peer(tls_context=_tls_context(tmp_path)).start()
    settings.MAILROOM_RELAY_HOST = server.address
    try:
        message = send(alice, "dana@remote.test")
        run()
    finally:
        server.stop()
    [transaction] = server.handler.transactions
    assert transaction.is_tls is True
    assert message.deliveries.get().attempts.get().is_tls is True


def test_local_recipients_are_stored_without_smtp(
    alice: Mailbox, bob: Mailbox, peer: PeerHandler
) -> None:
    message = send(alice, "bob@example.test", "nobody@example.test")
    assert statuses(message) == {"bob@example.test": "delivered", "nobody@example.test": "bounced"}
    stored = bob.messages.get()
    assert stored.folder.role == "inbox" and stored.message_id == message.message_id
    unknown = message.deliveries.get(recipient="nobody@example.test")
    assert (unknown.reply_code, unknown.enhanced_status) == (550, "5.1.1")
    assert run().claimed == 0
    assert peer.transactions == []


def test_the_sending_quota_holds_the_rest_until_the_next_hour(
    alice: Mailbox, peer: PeerHandler, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.MAILROOM_SENDING_HOURLY_QUOTA = 2
    for i in range(3):
        send(alice, f"user{i}@remote.test")
    clock = Clock()
    assert run(clock).delivered == 2
    waiting = Delivery.objects.get(status="queued")
    assert waiting.attempt_count == 0
    assert waiting.next_attempt_at == clock.now.replace(
        minute=0, second=0, microsecond=0
    ) + dt.timedelta(hours=1)


def _tls_context(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_the_celery_tasks_deliver_what_is_due(alice: Mailbox, peer: PeerHandler) -> None:
    from mailcore import tasks

    message = send(alice, "dana@remote.test")
    assert tasks.outbound_tick() is True  # something is due: a dispatcher is woken
    assert tasks.dispatch_outbound() == 1
    assert statuses(message) == {"dana@remote.test": "delivered"}
    assert tasks.outbound_tick() is False


def test_tracked_messages_get_per_recipient_links_pixel_and_unsubscribe(
    alice: Mailbox,
    peer: PeerHandler,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.MAILROOM_TRACKING_BASE_URL = "https://t.example.test"
    set_domain_tracking(alice.domain, {"unsubscribe": True})  # List-Unsubscribe: a domain setting
    key = dkim.create_key(alice.domain, "s1")
    html = (
        b"From: alice@example.test\r\nTo: dana@remote.test\r\nSubject: News\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p>Read <a href="https://news.example.org/a">this</a>.</p>\r\n'
    )
    message = send(
        alice, "dana@remote.test", "erin@remote.test", raw=html, track_opens=True,
        track_clicks=True,
    )  # fmt: skip
    stats = run()
    assert (stats.delivered, stats.transactions) == (2, 2)  # one body per recipient
    bodies = {t.recipients[0]: t.data for t in peer.transactions}
    assert set(bodies) == {"dana@remote.test", "erin@remote.test"}
    assert bodies["dana@remote.test"] != bodies["erin@remote.test"]
    for data in bodies.values():
        assert b"https://t.example.test/t/c/" in data  # the click redirect
        assert b"https://t.example.test/t/o/" in data  # the open pixel
        assert b'news.example.org/a"' not in data  # the raw link is rewritten
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in data

        def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
            return dkim.dns_record_value(key).encode()

        assert dkimpy.verify(data, dnsfunc=dnsfunc) is True
    assert set(statuses(message).values()) == {"delivered"}
