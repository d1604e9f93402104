"""Fixtures and builders of the webmail tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

import pytest
from django.test import Client

from mailcore.models import Folder, Mailbox, Message
from tests.factories import deliver, make_email

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000003010100c9fe92ef0000000049454e44ae426082"
)


def client_for(mailbox: Mailbox) -> Client:
    client = Client()
    client.force_login(mailbox.user)
    return client


@pytest.fixture
def alice_client(alice: Mailbox) -> Client:
    return client_for(alice)


@pytest.fixture
def bob_client(bob: Mailbox) -> Client:
    return client_for(bob)


@pytest.fixture
def charlie_client(charlie: Mailbox) -> Client:
    return client_for(charlie)


def folder(mailbox: Mailbox, role: str) -> Folder:
    return Folder.objects.get(mailbox=mailbox, role=role)


def counts(mailbox: Mailbox) -> dict[str, tuple[int, int]]:
    """role -> (total_count, unread_count), read fresh from the database."""
    return {f.role: (f.total_count, f.unread_count) for f in Folder.objects.filter(mailbox=mailbox)}


def real_counts(mailbox: Mailbox) -> dict[str, tuple[int, int]]:
    """role -> (total, unread) counted from the messages, to check the counters against."""
    result = {}
    for f in Folder.objects.filter(mailbox=mailbox):
        messages = Message.objects.filter(folder=f)
        result[f.role] = (messages.count(), messages.filter(is_seen=False).count())
    return result


def receive(
    mailbox: Mailbox,
    subject: str = "Hello",
    *,
    body: str = "Hi there,\nthis is a test.\n",
    sender: str = "Dana Sender <dana@remote.test>",
    minutes: int = 0,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Message:
    """Deliver a plain-text message to ``mailbox`` and return the stored row."""
    raw = make_email(
        sender=sender,
        to=mailbox.address,
        subject=subject,
        body=body,
        message_id=message_id,
        headers=headers,
        date=datetime(2026, 11, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=minutes),
    )
    outcome = deliver(raw, mailbox.address)
    return Message.objects.get(id=outcome.message_ids[0])


def html_email(
    *,
    to: str,
    subject: str,
    html: str,
    text: str = "",
    sender: str = "Dana Sender <dana@remote.test>",
    inline_png_cid: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain="remote.test")
    message.set_content(text or "This message has an HTML part.")
    message.add_alternative(html, subtype="html")
    if inline_png_cid:
        html_part = message.get_payload()[1]
        html_part.add_related(PNG_1PX, maintype="image", subtype="png", cid=f"<{inline_png_cid}>")
    for filename, content_type, data in attachments or []:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def deliver_raw(raw: bytes, mailbox: Mailbox) -> Message:
    outcome = deliver(raw, mailbox.address)
    return Message.objects.get(id=outcome.message_ids[0])
