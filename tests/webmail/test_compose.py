"""webmail.services.compose: drafts, reply/forward defaults, scheduled sends, local delivery."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from mailcore import mime
from mailcore.models import Attachment, Mailbox, Message, OutboundMessage
from mailcore.services.compose_mime import (
    AttachmentData,
    ComposeError,
    DraftContent,
    build_mime,
    parse_address_list,
    reply_subject,
)
from mailcore.services.provisioning import create_alias
from tests.webmail.conftest import counts, real_counts, receive
from webmail import tasks
from webmail.models import ScheduledSend, Upload
from webmail.services import compose, drafts

pytestmark = pytest.mark.django_db


def content(mailbox: Mailbox, **fields: object) -> DraftContent:
    values: dict[str, object] = {
        "from_name": mailbox.display_name,
        "from_address": mailbox.address,
        "to": [("Bob Example", "bob@example.test")],
        "subject": "Lunch",
        "body": "Noon?\n",
    }
    values.update(fields)
    return DraftContent(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bob@example.test", [("", "bob@example.test")]),
        (
            '"Doe, Jane" <jane@x.test>, bob@y.test',
            [("Doe, Jane", "jane@x.test"), ("", "bob@y.test")],
        ),
        ("Ann <ann@x.test>; carl@z.test\n", [("Ann", "ann@x.test"), ("", "carl@z.test")]),
        ("  ", []),
    ],
)
def test_parse_address_list(text: str, expected: list[tuple[str, str]]) -> None:
    assert parse_address_list(text) == expected


@pytest.mark.parametrize("text", ["bob", "bob@", "a@b@c.test, ok@x.test", "<>", "x y@z.test"])
def test_parse_address_list_names_the_bad_ones(text: str) -> None:
    with pytest.raises(ComposeError, match="Not a valid address"):
        parse_address_list(text)


@pytest.mark.parametrize(
    ("subject", "prefix", "expected"),
    [
        ("Lunch", "Re", "Re: Lunch"),
        ("Re: Lunch", "Re", "Re: Lunch"),
        ("RE: Fwd: re[2]: Lunch", "Re", "Re: Lunch"),
        ("Lunch", "Fwd", "Fwd: Lunch"),
        ("", "Re", "Re:"),
    ],
)
def test_reply_subject(subject: str, prefix: str, expected: str) -> None:
    assert reply_subject(subject, prefix) == expected


def test_build_mime_with_attachment_and_bcc_only_in_the_draft() -> None:
    draft = DraftContent(
        from_name="Alice Ëxample",
        from_address="alice@example.test",
        to=[("Bob", "bob@example.test")],
        bcc=[("", "secret@example.test")],
        subject="Prix 💶",
        body="Voilà\n",
        attachments=[AttachmentData("notes.txt", "text/plain", b"hello")],
        in_reply_to="orig@remote.test",
        references=["root@remote.test", "orig@remote.test"],
    )
    when = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)
    with_bcc = build_mime(draft, date=when, message_id="new@example.test")
    without = build_mime(draft, date=when, message_id="new@example.test", include_bcc=False)
    parsed = mime.parse_message(with_bcc)
    assert parsed.subject == "Prix 💶"
    assert parsed.from_address == mime.Address("Alice Ëxample", "alice@example.test")
    assert [a.address for a in parsed.bcc] == ["secret@example.test"]
    assert parsed.text.strip() == "Voilà"
    assert parsed.in_reply_to == "orig@remote.test"
    assert parsed.references == ["root@remote.test", "orig@remote.test"]
    assert parsed.message_id == "new@example.test"
    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        ("notes.txt", "text/plain", 5)
    ]
    assert mime.parse_message(without).bcc == []
    assert b"\r\n" in with_bcc and b"\n\n" not in with_bcc.replace(b"\r\n", b"")


def test_save_draft_creates_then_overwrites_in_place(alice: Mailbox) -> None:
    upload = Upload.objects.create(
        user=alice.user, filename="a.txt", content_type="text/plain", size=3, data=b"abc"
    )
    first = drafts.save_draft(
        alice,
        content(alice, attachments=[AttachmentData("a.txt", "text/plain", b"abc", upload.id)]),
    )
    assert first.folder.role == "drafts"
    assert (first.is_draft, first.is_seen) == (True, True)
    assert counts(alice)["drafts"] == (1, 0)
    assert not Upload.objects.filter(id=upload.id).exists()  # the draft holds the bytes now
    attachment = Attachment.objects.get(message=first)
    second = drafts.save_draft(
        alice,
        content(
            alice,
            subject="Lunch on Friday",
            attachments=[AttachmentData("a.txt", "text/plain", b"abc")],
        ),
        draft=first,
    )
    assert second.id == first.id
    assert counts(alice)["drafts"] == (1, 0)
    first.refresh_from_db()
    assert first.subject == "Lunch on Friday"
    assert list(Attachment.objects.filter(message=first).values_list("id", flat=True)) == [
        attachment.id
    ]  # same part path, same row: the compose page's tokens stay valid
    alice.refresh_from_db()
    assert alice.used_bytes == first.size
    assert Message.objects.filter(mailbox=alice).count() == 1


def test_send_to_local_mailbox_delivers_and_files_sent_copy(alice: Mailbox, bob: Mailbox) -> None:
    scheduled = compose.schedule_send(
        alice.user,
        alice,
        content(alice, bcc=[("", "alice@example.test")]),
        draft=None,
        send_at=timezone.now(),
    )
    assert counts(alice)["drafts"] == (1, 0)
    assert compose.send_due_messages() == 1
    scheduled.refresh_from_db()
    assert scheduled.state == ScheduledSend.State.SENT
    received = Message.objects.get(mailbox=bob)
    assert received.subject == "Lunch"
    assert received.folder.role == "inbox"
    assert received.message_id == scheduled.message_id
    assert b"Bcc" not in bytes(received.blob.data)
    sent = Message.objects.get(mailbox=alice, folder__role="sent")
    assert sent.id == scheduled.draft_id
    assert sent.is_draft is False
    assert b"Bcc: alice@example.test" in bytes(sent.blob.data)  # the sender's copy keeps Bcc
    bcc_copy = Message.objects.get(mailbox=alice, folder__role="inbox")
    assert bcc_copy.message_id == scheduled.message_id
    assert (
        counts(alice)
        == real_counts(alice)
        == {
            "inbox": (1, 1),
            "drafts": (0, 0),
            "sent": (1, 0),
            "archive": (0, 0),
            "junk": (0, 0),
            "trash": (0, 0),
        }
    )
    assert compose.send_due_messages() == 0  # nothing sent twice


def test_undo_send_cancels_before_anything_goes_out(alice: Mailbox, bob: Mailbox) -> None:
    scheduled = compose.schedule_send(
        alice.user,
        alice,
        content(alice),
        draft=None,
        send_at=timezone.now() + timedelta(seconds=10),
    )
    assert compose.send_due_messages() == 0  # not due yet
    assert compose.cancel_scheduled(scheduled) is True
    assert compose.send_due_messages(now=timezone.now() + timedelta(minutes=1)) == 0
    assert Message.objects.filter(mailbox=bob).count() == 0
    assert Message.objects.get(id=scheduled.draft_id).folder.role == "drafts"
    assert compose.cancel_scheduled(scheduled) is False


def test_beat_task_sends_what_came_due(alice: Mailbox, bob: Mailbox) -> None:
    compose.schedule_send(
        alice.user, alice, content(alice), draft=None, send_at=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.send_due_messages() == 1
    assert Message.objects.filter(mailbox=bob).count() == 1


def test_editing_a_scheduled_draft_cancels_the_schedule(alice: Mailbox, bob: Mailbox) -> None:
    scheduled = compose.schedule_send(
        alice.user, alice, content(alice), draft=None, send_at=timezone.now() + timedelta(hours=1)
    )
    drafts.save_draft(alice, content(alice, subject="Changed"), draft=scheduled.draft)
    scheduled.refresh_from_db()
    assert scheduled.state == ScheduledSend.State.CANCELLED
    assert compose.send_due_messages(now=timezone.now() + timedelta(hours=2)) == 0
    assert Message.objects.filter(mailbox=bob).count() == 0


def test_unknown_local_recipients_store_and_send_nothing(alice: Mailbox, bob: Mailbox) -> None:
    with pytest.raises(ComposeError, match="There is no mailbox at nobody@example.test."):
        compose.schedule_send(
            alice.user,
            alice,
            content(alice, to=[("", "bob@example.test"), ("", "nobody@example.test")]),
            draft=None,
            send_at=timezone.now(),
        )
    assert Message.objects.count() == 0
    assert ScheduledSend.objects.count() == 0


def test_remote_recipients_go_through_the_outbound_path(alice: Mailbox, bob: Mailbox) -> None:
    scheduled = compose.schedule_send(
        alice.user,
        alice,
        content(alice, to=[("", "bob@example.test"), ("Dana", "dana@remote.test")]),
        draft=None,
        send_at=timezone.now(),
    )
    assert compose.send_due_messages() == 1
    outbound = OutboundMessage.objects.get()
    assert (outbound.source, outbound.mailbox_id, outbound.message_id) == (
        "webmail",
        alice.id,
        scheduled.message_id,
    )
    assert list(outbound.deliveries.values_list("recipient", "status")) == [
        ("dana@remote.test", "queued")
    ]
    assert Message.objects.get(mailbox=bob).message_id == scheduled.message_id  # local, direct
    assert Message.objects.get(mailbox=alice, folder__role="sent").id == scheduled.draft_id
    assert compose.send_due_messages() == 0
    assert OutboundMessage.objects.count() == 1  # never handed over twice


def test_reply_threads_marks_answered_and_quotes(alice: Mailbox, bob: Mailbox) -> None:
    original = receive(
        alice,
        "Plans",
        sender="Bob Example <bob@example.test>",
        body="Shall we meet?\nSay at noon.\n",
        headers={"Cc": "carl@remote.test, alice@example.test"},
    )
    start = drafts.start_reply(
        original, mode="reply_all", mine={"alice@example.test"}, signature="Alice"
    )
    assert start.to == [("Bob Example", "bob@example.test")]
    assert start.cc == [("", "carl@remote.test")]
    assert start.subject == "Re: Plans"
    assert start.in_reply_to == original.message_id
    assert start.body.startswith("\n\n\n-- \nAlice\n\nOn Sun, 01 Nov 2026 at 12:00, ")
    assert start.body.endswith("wrote:\n> Shall we meet?\n> Say at noon.\n")
    reply = content(
        alice,
        to=start.to,
        subject=start.subject,
        body="Yes!\n" + start.body,
        in_reply_to=start.in_reply_to,
        references=start.references,
    )
    compose.schedule_send(alice.user, alice, reply, draft=None, send_at=timezone.now())
    compose.send_due_messages()
    original.refresh_from_db()
    assert original.is_answered is True
    sent = Message.objects.get(mailbox=alice, folder__role="sent")
    assert sent.thread_id == original.thread_id
    at_bob = Message.objects.get(mailbox=bob)
    assert at_bob.in_reply_to == original.message_id


def test_forward_carries_attachments(alice: Mailbox) -> None:
    from tests.webmail.conftest import deliver_raw, html_email

    original = deliver_raw(
        html_email(
            to=alice.address,
            subject="Report",
            html="<p>Here</p>",
            text="Here",
            attachments=[("r.csv", "text/csv", b"a,b\n1,2\n")],
        ),
        alice,
    )
    start = drafts.start_reply(original, mode="forward", mine={alice.address}, signature="")
    assert start.subject == "Fwd: Report"
    assert start.to == []
    assert "---------- Forwarded message ----------\nFrom: Dana Sender <dana@remote.test>" in (
        start.body
    )
    attachment = Attachment.objects.get(message=original, filename="r.csv")
    assert start.attachment_ids == [attachment.id]
    data = drafts.resolve_attachments(alice.user, [f"a:{attachment.id}"])
    assert data == [AttachmentData("r.csv", "text/csv", b"a,b\n1,2\n")]


def test_send_as_alias_identity(alice: Mailbox, bob: Mailbox) -> None:
    create_alias("sales@example.test", ["alice@example.test"])
    scheduled = compose.schedule_send(
        alice.user,
        alice,
        content(alice, from_address="sales@example.test", from_name="Sales"),
        draft=None,
        send_at=timezone.now(),
    )
    compose.send_due_messages()
    received = Message.objects.get(mailbox=bob)
    assert (received.from_name, received.from_address) == ("Sales", "sales@example.test")
    assert received.envelope_from == "sales@example.test"
    parsed = email.message_from_bytes(bytes(received.blob.data), policy=email.policy.default)
    assert parsed["Message-ID"] == f"<{scheduled.message_id}>"
