"""Bounces and complaints coming back: process_bounce on corpus files, and the VERP round trip
through the real SMTP receiver."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from analytics.models import Event
from mailcore.models import Delivery, Mailbox, Message, OutboundMessage, Suppression
from mailcore.services.outbound import submit_outbound, verp
from mailcore.services.outbound.bounces import process_bounce
from mailcore.services.outbound.delivery import DispatchOptions, run_dispatcher
from mailcore.smtp.server import Receiver
from tests.factories import make_email
from tests.mailcore.outbound_peer import Peer, PeerHandler
from tests.support import BOUNCE_CORPUS


def corpus(name: str) -> bytes:
    return (BOUNCE_CORPUS / "maildir" / "bsd" / name).read_bytes()


def send(alice: Mailbox, *recipients: str, delivered: bool = True) -> OutboundMessage:
    message = submit_outbound(
        organization_id=alice.organization_id,
        mail_from="alice@example.test",
        recipients=recipients,
        raw=make_email(sender="alice@example.test", to=recipients[0]),
        source="api",
    )
    if delivered:
        message.deliveries.update(status="delivered", reply_code=250)
    return message


def token(message: OutboundMessage, recipient: str) -> str:
    return verp.make_token(message.deliveries.get(recipient=recipient).id)


def event_types(message: OutboundMessage) -> list[str]:
    return list(
        Event.objects.filter(message_id=message.id).order_by("id").values_list("type", flat=True)
    )


def dsn(message_id: str, recipient: str, status: str, action: str = "failed") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.remote.test\r\nTo: bounces@example.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.remote.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: User unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: alice@example.test\r\nMessage-ID: <{message_id}>\r\nSubject: Hello\r\n"
        "--B--\r\n"
    ).encode()


@pytest.mark.django_db
def test_a_postfix_bounce_with_the_token_bounces_and_suppresses(alice: Mailbox) -> None:
    message = send(alice, "r@p351355.pool.example.ne.jp")

    outcome = process_bounce(
        corpus("lhost-postfix-01.eml"), token(message, "r@p351355.pool.example.ne.jp")
    )

    delivery = message.deliveries.get()
    assert (outcome.kind, outcome.bounced, outcome.suppressed) == ("bounce", 1, 1)
    assert outcome.matched == [delivery.id]
    assert (delivery.status, delivery.enhanced_status) == ("bounced", "5.1.1")
    assert delivery.reason == "mailererror"
    attempt = delivery.attempts.get()
    assert (attempt.outcome, attempt.enhanced_status) == ("bounced", "5.1.1")
    assert attempt.reply.startswith("DSN: ")
    suppression = Suppression.objects.get()
    assert (
        suppression.address,
        suppression.reason,
        suppression.source,
        suppression.delivery_id,
    ) == ("r@p351355.pool.example.ne.jp", "bounce", "dsn", delivery.id)
    assert event_types(message) == ["sent", "bounced"]
    event = Event.objects.get(type="bounced")
    assert event.payload["reason"] == "mailererror" and event.payload["permanent"] is True

    again = process_bounce(
        corpus("lhost-postfix-01.eml"), token(message, "r@p351355.pool.example.ne.jp")
    )
    assert (again.bounced, again.suppressed) == (0, 0)
    assert event_types(message) == ["sent", "bounced"]


@pytest.mark.django_db
def test_one_report_for_two_recipients_of_one_transaction(alice: Mailbox) -> None:
    message = send(alice, "filtered@example.co.jp", "userunknown@example.co.jp")

    outcome = process_bounce(
        corpus("lhost-postfix-02.eml"), token(message, "filtered@example.co.jp")
    )

    assert outcome.bounced == 2
    assert dict(message.deliveries.values_list("recipient", "status")) == {
        "filtered@example.co.jp": "bounced",
        "userunknown@example.co.jp": "bounced",
    }
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        "filtered@example.co.jp",
        "userunknown@example.co.jp",
    }


@pytest.mark.django_db
def test_a_dsn_without_token_is_matched_by_message_id(alice: Mailbox) -> None:
    message = send(alice, "gone@remote.test", "dana@remote.test")

    outcome = process_bounce(dsn(message.message_id, "gone@remote.test", "5.1.1"), None)

    assert outcome.bounced == 1
    assert dict(message.deliveries.values_list("recipient", "status")) == {
        "gone@remote.test": "bounced",
        "dana@remote.test": "delivered",
    }
    assert list(Suppression.objects.values_list("address", "source")) == [
        ("gone@remote.test", "dsn")
    ]


@pytest.mark.django_db
def test_a_delayed_dsn_records_a_deferral_only(alice: Mailbox) -> None:
    message = send(alice, "slow@remote.test")

    outcome = process_bounce(dsn(message.message_id, "slow@remote.test", "4.4.7", "delayed"), None)

    assert (outcome.deferred, outcome.bounced) == (1, 0)
    assert message.deliveries.get().status == "delivered"
    assert event_types(message) == ["sent", "deferred"]
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_a_complaint_marks_and_suppresses(alice: Mailbox) -> None:
    message = send(alice, "user@example.com")

    outcome = process_bounce(corpus("arf-12.eml"), token(message, "user@example.com"))

    delivery = message.deliveries.get()
    assert (outcome.kind, outcome.complained, outcome.suppressed) == ("complaint", 1, 1)
    assert delivery.status == "delivered" and delivery.complained_at is not None
    assert list(Suppression.objects.values_list("address", "reason", "source")) == [
        ("user@example.com", "complaint", "arf")
    ]
    assert event_types(message) == ["sent", "complained"]
    assert process_bounce(corpus("arf-12.eml"), token(message, "user@example.com")).complained == 0
    assert event_types(message) == ["sent", "complained"]


@pytest.mark.django_db
def test_a_redacted_complaint_is_attributed_by_the_token(alice: Mailbox) -> None:
    message = send(alice, "someone@remote.test")
    outcome = process_bounce(corpus("arf-11.eml"), token(message, "someone@remote.test"))
    assert outcome.complained == 1
    assert Suppression.objects.get().address == "someone@remote.test"


@pytest.mark.django_db
def test_auto_replies_and_forged_tokens_change_nothing(alice: Mailbox) -> None:
    message = send(alice, "dana@remote.test")
    good = token(message, "dana@remote.test")
    auto_reply = make_email(
        sender="dana@remote.test",
        to="bounces@example.test",
        subject="Out of office",
        headers={"Auto-Submitted": "auto-replied"},
    )
    assert process_bounce(auto_reply, good).kind == "auto_reply"
    forged = good[:-1] + ("a" if good[-1] != "a" else "b")
    assert verp.parse_token(forged) is None
    outcome = process_bounce(dsn("unknown@x", "other@remote.test", "5.1.1"), forged)
    assert (outcome.kind, outcome.matched) == ("bounce", [])
    assert message.deliveries.get().status == "delivered"
    assert event_types(message) == ["sent"]
    assert not Suppression.objects.exists()


@pytest.fixture
def peer(settings) -> Iterator[PeerHandler]:  # type: ignore[no-untyped-def]
    server = Peer().start()
    settings.MAILROOM_RELAY_HOST = server.address
    yield server.handler
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_verp_round_trip_through_the_receiver(
    receiver: Receiver, alice: Mailbox, peer: PeerHandler
) -> None:
    message = send(alice, "r@p351355.pool.example.ne.jp", delivered=False)
    run_dispatcher(DispatchOptions(idle_seconds=0))
    [transaction] = peer.transactions
    delivery = message.deliveries.get()
    assert delivery.status == "delivered"
    assert transaction.mail_from == f"bounces+{verp.make_token(delivery.id)}@example.test"

    with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as smtp:
        smtp.ehlo("mx.remote.test")
        assert smtp.mail("<>")[0] == 250
        assert smtp.rcpt(transaction.mail_from.upper()) == (250, b"2.1.5 Ok")
        code, reply = smtp.data(corpus("lhost-postfix-01.eml").replace(b"\n", b"\r\n"))
    assert (code, reply) == (250, b"2.0.0 Ok: bounce processed")

    delivery.refresh_from_db()
    assert (delivery.status, delivery.enhanced_status) == ("bounced", "5.1.1")
    assert Suppression.objects.get().address == "r@p351355.pool.example.ne.jp"
    assert event_types(message) == ["sent", "delivered", "bounced"]
    assert not Message.objects.exists()  # the bounce is not stored in any mailbox


@pytest.mark.django_db(transaction=True)
def test_the_receiver_takes_dsns_at_the_bare_bounce_address(
    receiver: Receiver, alice: Mailbox
) -> None:
    message = send(alice, "gone@remote.test")
    with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as smtp:
        smtp.ehlo("mx.remote.test")
        smtp.mail("<>")
        assert smtp.rcpt("bounces@example.test")[0] == 250
        assert smtp.rcpt("bounces@elsewhere.test")[0] == 550
        code, _ = smtp.data(dsn(message.message_id, "gone@remote.test", "5.1.1"))
    assert code == 250
    assert Delivery.objects.get().status == "bounced"
