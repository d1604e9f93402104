"""Storing received mail: fields, raw bytes, threads, dedupe, quotas, events, search."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.postgres.search import SearchQuery
from django.utils import timezone

from analytics.models import Event
from mailcore import mime
from mailcore.models import Attachment, Blob, Folder, Mailbox, Message, Thread
from mailcore.services.inbound import InboundItem, Status, deliver_inbound
from mailcore.services.provisioning import create_alias
from mailcore.services.recipients import resolve_recipient
from tests.factories import deliver, make_email

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mime"


def test_stores_parsed_fields_counters_and_event(alice: Mailbox) -> None:
    raw = make_email(
        sender='"Dana Q. Sender" <Dana@Remote.TEST>',
        to="Alice <alice@example.test>, carol@else.test",
        subject="Quarterly numbers",
        body="Hello Alice,\r\n\r\nthe numbers are in.\r\n",
        message_id="<q1@remote.test>",
        headers={"Cc": "Eve <eve@else.test>"},
    )
    outcome = deliver(raw, "alice@example.test")
    assert outcome.status is Status.STORED
    message = Message.objects.get(id__in=outcome.message_ids)
    assert message.subject == "Quarterly numbers"
    assert (message.from_name, message.from_address) == ("Dana Q. Sender", "Dana@remote.test")
    assert message.to_addresses == [["Alice", "alice@example.test"], ["", "carol@else.test"]]
    assert message.cc_addresses == [["Eve", "eve@else.test"]]
    assert message.message_id == "q1@remote.test"
    assert message.sent_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert message.snippet == "Hello Alice, the numbers are in."
    assert message.folder.role == Folder.Role.INBOX
    assert (message.is_seen, message.has_attachments) == (False, False)
    assert message.size == len(bytes(message.blob.data))
    inbox = Folder.objects.get(id=message.folder_id)
    assert (inbox.total_count, inbox.unread_count) == (1, 1)
    assert Mailbox.objects.get(id=alice.id).used_bytes == message.size
    event = Event.objects.get()
    assert (event.type, event.message_id, event.recipient) == (
        "received",
        message.id,
        "alice@example.test",
    )
    assert event.organization_id == alice.organization_id


def test_raw_bytes_are_kept_losslessly(alice: Mailbox) -> None:
    body = bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
    raw = b"Subject: binary\r\nContent-Type: application/octet-stream\r\n\r\n" + body
    outcome = deliver(raw, "alice@example.test")
    stored = bytes(Message.objects.get(id=outcome.message_ids[0]).blob.data)
    assert stored.endswith(raw)
    assert b"\x00" in stored and b"\xff" in stored


def test_attachments_are_recorded_with_their_part_paths(alice: Mailbox) -> None:
    raw = (
        b"From: a@remote.test\r\nSubject: with file\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b1\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="report.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
    )
    outcome = deliver(raw, "alice@example.test")
    message = Message.objects.get(id=outcome.message_ids[0])
    assert message.has_attachments is True
    attachment = Attachment.objects.get(message=message)
    assert (attachment.filename, attachment.content_type, attachment.size, attachment.path) == (
        "report.pdf",
        "application/pdf",
        9,
        "2",
    )
    payload, content_type, filename = mime.extract_part(bytes(message.blob.data), "2")
    assert (payload, content_type, filename) == (b"%PDF-1.4\n", "application/pdf", "report.pdf")


def test_alias_to_two_mailboxes_stores_one_blob_and_two_messages(
    alice: Mailbox, bob: Mailbox
) -> None:
    create_alias("team@example.test", ["alice@example.test", "bob@example.test"])
    outcome = deliver(make_email(to="team@example.test"), "team@example.test", "bob@example.test")
    assert len(outcome.message_ids) == 2
    assert Blob.objects.count() == 1
    assert sorted(Message.objects.values_list("mailbox_id", flat=True)) == sorted(
        [alice.id, bob.id]
    )


def test_replies_join_the_thread_by_headers_then_by_subject(alice: Mailbox) -> None:
    first = deliver(make_email(subject="Plans", message_id="<p1@r.test>"), "alice@example.test")
    by_header = deliver(
        make_email(
            subject="Something else entirely",
            message_id="<p2@r.test>",
            headers={"In-Reply-To": "<p1@r.test>", "References": "<p1@r.test>"},
        ),
        "alice@example.test",
    )
    by_subject = deliver(
        make_email(subject="RE: Fwd: plans", message_id="<p3@r.test>"), "alice@example.test"
    )
    unrelated = deliver(make_email(subject="Plans", message_id="<p4@r.test>"), "alice@example.test")
    threads = dict(Message.objects.values_list("message_id", "thread_id"))
    assert threads["p2@r.test"] == threads["p1@r.test"]
    assert threads["p3@r.test"] == threads["p1@r.test"]
    assert threads["p4@r.test"] != threads["p1@r.test"]
    thread = Thread.objects.get(id=threads["p1@r.test"])
    assert thread.message_count == 3
    assert thread.subject_key == "plans"
    assert {first.status, by_header.status, by_subject.status, unrelated.status} == {Status.STORED}


def test_threads_never_cross_mailboxes(alice: Mailbox, charlie: Mailbox) -> None:
    deliver(make_email(message_id="<x1@r.test>"), "alice@example.test")
    deliver(
        make_email(message_id="<x2@r.test>", headers={"In-Reply-To": "<x1@r.test>"}),
        "charlie@other.test",
    )
    assert Thread.objects.count() == 2


def test_same_message_id_is_deduplicated_within_the_window(alice: Mailbox) -> None:
    raw = make_email(message_id="<same@r.test>")
    assert deliver(raw, "alice@example.test").duplicate_count == 0
    used, blobs = Mailbox.objects.get(id=alice.id).used_bytes, Blob.objects.count()
    again = deliver(raw, "alice@example.test")
    assert (again.status, again.duplicate_count, again.message_ids) == (Status.STORED, 1, [])
    assert Message.objects.count() == 1
    # The resend costs nothing: no second copy of the bytes, no quota charged.
    assert (Mailbox.objects.get(id=alice.id).used_bytes, Blob.objects.count()) == (used, blobs)
    Message.objects.update(received_at=timezone.now() - timedelta(days=2))
    assert deliver(raw, "alice@example.test").message_ids != []
    assert Message.objects.count() == 2


def test_dedupe_charges_only_the_mailboxes_that_get_a_copy(alice: Mailbox, bob: Mailbox) -> None:
    raw = make_email(message_id="<shared@r.test>")
    deliver(raw, "alice@example.test")
    used_by_alice = Mailbox.objects.get(id=alice.id).used_bytes
    both = deliver(raw, "alice@example.test", "bob@example.test")
    assert (both.duplicate_count, len(both.message_ids)) == (1, 1)
    assert Mailbox.objects.get(id=alice.id).used_bytes == used_by_alice
    assert Mailbox.objects.get(id=bob.id).used_bytes > 0
    assert Message.objects.filter(mailbox=bob).count() == 1


def test_a_resend_inside_one_batch_is_stored_once(alice: Mailbox) -> None:
    raw = make_email(message_id="<twice@r.test>")
    target = resolve_recipient("alice@example.test").targets
    item = InboundItem(
        mail_from="dana@remote.test", recipients=("alice@example.test",), targets=target, data=raw
    )
    first, second = deliver_inbound([item, item], push=False)
    assert (len(first.message_ids), second.duplicate_count, second.message_ids) == (1, 1, [])
    assert Message.objects.filter(mailbox=alice).count() == 1
    assert Blob.objects.count() == 1


def test_over_quota_stores_nothing(alice: Mailbox) -> None:
    Mailbox.objects.filter(id=alice.id).update(quota_bytes=100)
    outcome = deliver(make_email(), "alice@example.test")
    assert outcome.status is Status.TOO_BIG_FOR_QUOTA
    Mailbox.objects.filter(id=alice.id).update(quota_bytes=600, used_bytes=550)
    outcome = deliver(make_email(), "alice@example.test")
    assert outcome.status is Status.OVER_QUOTA
    assert Message.objects.count() == Blob.objects.count() == Event.objects.count() == 0
    assert Mailbox.objects.get(id=alice.id).used_bytes == 550


@pytest.mark.django_db(transaction=True)
def test_a_bad_item_does_not_fail_the_rest_of_its_batch(alice: Mailbox) -> None:
    target = resolve_recipient("alice@example.test").targets[0]
    good = InboundItem("d@r.test", ("alice@example.test",), (target,), make_email(subject="ok"))
    bad = InboundItem(
        "d@r.test",
        ("alice@example.test",),
        (dataclasses.replace(target, inbox_folder_id=0),),  # no such folder: the insert fails
        make_email(subject="bad"),
    )
    other = dataclasses.replace(good, data=make_email(subject="ok"))  # another Message-ID
    outcomes = deliver_inbound([good, bad, other])
    assert [o.status for o in outcomes] == [Status.STORED, Status.FAILED, Status.STORED]
    assert sorted(Message.objects.values_list("subject", flat=True)) == ["ok", "ok"]


def test_full_text_search_uses_field_weights(alice: Mailbox) -> None:
    deliver(
        make_email(sender="Zed <zed@remote.test>", subject="Invoice", body="pay the plumber"),
        "alice@example.test",
    )
    deliver(make_email(sender="Amy <amy@remote.test>", subject="zed"), "alice@example.test")

    def matching(query: str) -> list[str]:
        found = Message.objects.filter(
            search_vector=SearchQuery(query, search_type="raw", config="simple")
        )
        return sorted(found.values_list("subject", flat=True))

    assert matching("plumber") == ["Invoice"]
    assert matching("zed") == ["Invoice", "zed"]
    assert matching("zed:A") == ["Invoice"]  # from:zed
    assert matching("zed:C") == ["zed"]  # subject:zed
    assert matching("remote.test:A & amy:A") == ["zed"]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda p: p.name)
def test_every_fixture_is_stored_and_readable(alice: Mailbox, path: Path) -> None:
    raw = path.read_bytes()
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # as SMTP carries it
    outcome = deliver(raw, "alice@example.test")
    assert outcome.status is Status.STORED
    message = Message.objects.get(id=outcome.message_ids[0])
    assert bytes(message.blob.data).endswith(raw)
    parsed = mime.parse_message(bytes(message.blob.data))
    assert isinstance(parsed.text, str)
    assert message.attachments.count() == len(parsed.attachments)
