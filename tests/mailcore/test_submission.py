"""Authenticated submission over a real socket: AUTH after STARTTLS, sender ownership."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcore.models import Delivery, Mailbox, MailboxGrant, OutboundMessage
from mailcore.services.provisioning import create_alias
from mailcore.smtp.server import Receiver, ReceiverConfig
from tests.factories import PASSWORD, make_email, self_signed_certificate

pytestmark = pytest.mark.django_db(transaction=True)


def insecure_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture
def submission(transactional_db: None, tmp_path: Path) -> Iterator[Receiver]:
    cert, key = self_signed_certificate(tmp_path)
    server = Receiver(
        ReceiverConfig(host="127.0.0.1", port=0, submission=True, tls_cert=cert, tls_key=key)
    )
    server.start_in_thread()
    yield server
    server.stop_thread()


def test_auth_is_only_offered_after_starttls(submission: Receiver, alice: Mailbox) -> None:
    with smtplib.SMTP("127.0.0.1", submission.port, timeout=10) as smtp:
        smtp.ehlo("client.test")
        assert "auth" not in smtp.esmtp_features
        assert smtp.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB4")[0] == 538
        assert smtp.mail("alice@example.test")[0] == 530  # authentication required
        smtp.starttls(context=insecure_context())
        smtp.ehlo("client.test")
        assert smtp.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]


def test_wrong_password_is_refused(submission: Receiver, alice: Mailbox) -> None:
    with smtplib.SMTP("127.0.0.1", submission.port, timeout=10) as smtp:
        smtp.starttls(context=insecure_context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.login("alice@example.test", "wrong password")
        assert refused.value.smtp_code == 535
    assert OutboundMessage.objects.count() == 0


def test_sends_through_the_outbound_path(submission: Receiver, alice: Mailbox) -> None:
    with smtplib.SMTP("127.0.0.1", submission.port, timeout=10) as smtp:
        smtp.starttls(context=insecure_context())
        smtp.login("alice@example.test", PASSWORD)
        refused = smtp.sendmail(
            "alice@example.test",
            ["dana@remote.test", "erin@elsewhere.test"],
            make_email(sender="alice@example.test", to="dana@remote.test", subject="Via 587"),
        )
    assert refused == {}
    message = OutboundMessage.objects.get()
    assert (message.source, message.mail_from, message.subject) == (
        "smtp",
        "alice@example.test",
        "Via 587",
    )
    assert message.mailbox_id == alice.id
    assert sorted(Delivery.objects.values_list("recipient", flat=True)) == [
        "dana@remote.test",
        "erin@elsewhere.test",
    ]


def test_sender_must_be_an_address_the_account_may_use(
    submission: Receiver, alice: Mailbox, bob: Mailbox, charlie: Mailbox
) -> None:
    create_alias("sales@example.test", ["alice@example.test"])
    with smtplib.SMTP("127.0.0.1", submission.port, timeout=10) as smtp:
        smtp.starttls(context=insecure_context())
        smtp.login("alice@example.test", PASSWORD)
        code, text = smtp.mail("charlie@other.test")
        assert (code, text[:5]) == (553, b"5.7.1")
        smtp.rset()
        assert smtp.mail("bob@example.test")[0] == 553  # alice has no grant on bob's mailbox
        smtp.rset()
        assert smtp.mail("sales@example.test")[0] == 250  # an alias of hers
    with smtplib.SMTP("127.0.0.1", submission.port, timeout=10) as smtp:
        smtp.starttls(context=insecure_context())
        smtp.login("bob@example.test", PASSWORD)
        assert smtp.mail("alice@example.test")[0] == 553  # shared for reading only
        MailboxGrant.objects.filter(mailbox=alice).update(can_send=True)
        smtp.rset()
        assert smtp.mail("alice@example.test")[0] == 250
    assert OutboundMessage.objects.count() == 0


def test_plain_auth_on_loopback_only_when_explicitly_allowed(
    transactional_db: None, alice: Mailbox
) -> None:
    server = Receiver(
        ReceiverConfig(host="127.0.0.1", port=0, submission=True, allow_insecure_loopback=True)
    )
    server.start_in_thread()
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            smtp.ehlo("app.test")
            assert "auth" in smtp.esmtp_features
            assert smtp.login("alice@example.test", PASSWORD)[0] == 235
            smtp.sendmail("alice@example.test", ["dana@remote.test"], make_email(subject="lo"))
    finally:
        server.stop_thread()
    assert OutboundMessage.objects.get().subject == "lo"
