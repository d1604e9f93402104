"""The compose page: send, undo send, send later, autosave, uploads, reply, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailcore.models import Attachment, Mailbox, Message
from mailcore.services.provisioning import create_alias
from tests.webmail.conftest import counts, folder, receive
from webmail.models import Identity, Preferences, ScheduledSend, Upload

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def form(mailbox: Mailbox, **fields: object) -> dict[str, object]:
    data: dict[str, object] = {
        "sender": f"m:{mailbox.id}",
        "to": "Bob Example <bob@example.test>",
        "subject": "Hello Bob",
        "body": "How are you?",
        "action": "send",
    }
    data.update(fields)
    return data


def test_send_with_undo_window_then_send_now(
    alice_client: Client, alice: Mailbox, bob: Mailbox
) -> None:
    response = alice_client.post(reverse("webmail:compose"), form(alice))
    scheduled = ScheduledSend.objects.get()
    inbox = folder(alice, "inbox")
    assert response.status_code == 302
    assert response["Location"] == f"/folder/{inbox.id}/?scheduled={scheduled.id}"
    assert scheduled.state == ScheduledSend.State.PENDING
    assert 9 <= (scheduled.send_at - timezone.now()).total_seconds() <= 10  # default 10 s
    page = alice_client.get(response["Location"]).content.decode()
    assert 'id="sending-banner"' in page and "Undo" in page
    assert Message.objects.filter(mailbox=bob).count() == 0
    response = alice_client.post(reverse("webmail:scheduled_send", args=[scheduled.id]), **JSON)
    assert response.json() == {"ok": True, "state": "sent", "message": "Message sent."}
    assert Message.objects.get(mailbox=bob).subject == "Hello Bob"
    assert counts(alice)["sent"] == (1, 0)
    assert counts(alice)["drafts"] == (0, 0)


def test_undo_send_returns_to_the_draft(alice_client: Client, alice: Mailbox, bob: Mailbox) -> None:
    alice_client.post(reverse("webmail:compose"), form(alice))
    scheduled = ScheduledSend.objects.get()
    response = alice_client.post(reverse("webmail:scheduled_cancel", args=[scheduled.id]), **JSON)
    assert response.json()["compose_url"] == f"/compose/?draft={scheduled.draft_id}"
    page = alice_client.get(response.json()["compose_url"]).content.decode()
    assert 'value="Hello Bob"' in page
    assert "How are you?" in page
    # Too late to send it now, and nothing went out.
    response = alice_client.post(reverse("webmail:scheduled_send", args=[scheduled.id]), **JSON)
    assert response.json()["ok"] is False
    assert Message.objects.filter(mailbox=bob).count() == 0
    assert counts(alice)["drafts"] == (1, 0)


def test_send_immediately_when_undo_is_off(
    alice_client: Client, alice: Mailbox, bob: Mailbox
) -> None:
    Preferences.objects.create(user=alice.user, undo_send_seconds=0)
    response = alice_client.post(reverse("webmail:compose"), form(alice))
    assert response["Location"] == f"/folder/{folder(alice, 'inbox').id}/"
    assert Message.objects.get(mailbox=bob).subject == "Hello Bob"


def test_send_later(alice_client: Client, alice: Mailbox, bob: Mailbox) -> None:
    when = timezone.now() + timedelta(days=1)
    alice_client.post(
        reverse("webmail:compose"),
        form(alice, send_at_utc=when.strftime("%Y-%m-%dT%H:%M:%S.000Z")),
    )
    scheduled = ScheduledSend.objects.get()
    assert abs((scheduled.send_at - when).total_seconds()) < 1
    page = alice_client.get(f"/folder/{folder(alice, 'inbox').id}/?scheduled={scheduled.id}")
    assert "Scheduled to send" in page.content.decode()
    assert Message.objects.filter(mailbox=bob).count() == 0


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"to": "bob"}, "Not a valid address: bob"),
        ({"to": ""}, "Add at least one recipient."),
        ({"to": "ghost@example.test"}, "There is no mailbox at ghost@example.test."),
    ],
)
def test_refused_send_keeps_the_form_and_sends_nothing(
    alice_client: Client,
    alice: Mailbox,
    bob: Mailbox,
    fields: dict[str, str],
    error: str,
) -> None:
    response = alice_client.post(reverse("webmail:compose"), form(alice, **fields))
    assert response.status_code == 400
    page = response.content.decode()
    assert error in page
    assert 'value="Hello Bob"' in page  # what was written is still there
    assert ScheduledSend.objects.count() == 0
    assert Message.objects.count() == 0


def test_autosave_creates_once_then_updates(alice_client: Client, alice: Mailbox) -> None:
    url = reverse("webmail:autosave")
    assert alice_client.post(url, form(alice, to="", subject="", body="")).json() == {
        "ok": True,
        "draft": None,
    }
    first = alice_client.post(url, form(alice, to="bob@exa", subject="Draft")).json()
    assert first["ok"] is True
    second = alice_client.post(url, form(alice, draft=first["draft"], subject="Draft 2")).json()
    assert second["draft"] == first["draft"]
    draft = Message.objects.get(id=first["draft"])
    assert (draft.subject, draft.to_addresses) == ("Draft 2", [["Bob Example", "bob@example.test"]])
    assert counts(alice)["drafts"] == (1, 0)


def test_upload_then_autosave_swaps_the_token(alice_client: Client, alice: Mailbox) -> None:
    response = alice_client.post(
        reverse("webmail:upload"),
        {"file": SimpleUploadedFile("notes.txt", b"remember", content_type="text/plain")},
    )
    upload = Upload.objects.get()
    assert response.json() == {
        "ok": True,
        "token": f"u:{upload.id}",
        "filename": "notes.txt",
        "size": 8,
    }
    saved = alice_client.post(
        reverse("webmail:autosave"), form(alice, attachment=[f"u:{upload.id}"])
    ).json()
    attachment = Attachment.objects.get(message_id=saved["draft"])
    assert saved["attachments"] == [
        {"token": f"a:{attachment.id}", "filename": "notes.txt", "size": 8}
    ]
    assert Upload.objects.count() == 0


def test_no_script_send_with_posted_file(
    alice_client: Client, alice: Mailbox, bob: Mailbox
) -> None:
    Preferences.objects.create(user=alice.user, undo_send_seconds=0)
    alice_client.post(
        reverse("webmail:compose"),
        form(alice, files=[SimpleUploadedFile("a.bin", b"\x00\x01", "application/octet-stream")]),
    )
    received = Message.objects.get(mailbox=bob)
    assert received.has_attachments is True
    assert list(received.attachments.values_list("filename", "size")) == [("a.bin", 2)]


def test_reply_page_prefills_and_send_marks_answered(
    alice_client: Client, alice: Mailbox, bob: Mailbox
) -> None:
    Preferences.objects.create(user=alice.user, undo_send_seconds=0, signature="Cheers,\nAlice")
    original = receive(alice, "Dinner", sender="Bob Example <bob@example.test>", body="Friday?")
    page = alice_client.get(
        reverse("webmail:compose"), {"source": original.id, "mode": "reply"}
    ).content.decode()
    assert 'value="Bob Example &lt;bob@example.test&gt;"' in page
    assert 'value="Re: Dinner"' in page
    assert "&gt; Friday?" in page and "Cheers,\nAlice" in page
    alice_client.post(
        reverse("webmail:compose"),
        form(
            alice,
            subject="Re: Dinner",
            body="Yes",
            in_reply_to=original.message_id,
            references=f"<{original.message_id}>",
        ),
    )
    original.refresh_from_db()
    assert original.is_answered is True
    assert Message.objects.get(mailbox=bob).in_reply_to == original.message_id


def test_identity_is_offered_and_used(alice_client: Client, alice: Mailbox, bob: Mailbox) -> None:
    Preferences.objects.create(user=alice.user, undo_send_seconds=0)
    create_alias("help@example.test", ["alice@example.test"])
    alice_client.post(
        reverse("webmail:settings"),
        {"section": "identity_add", "address": "help@example.test", "name": "Help Desk"},
    )
    identity = Identity.objects.get(user=alice.user)
    page = alice_client.get(reverse("webmail:compose")).content.decode()
    assert f'<option value="i:{identity.id}">Help Desk &lt;help@example.test&gt;</option>' in page
    alice_client.post(reverse("webmail:compose"), form(alice, sender=f"i:{identity.id}"))
    received = Message.objects.get(mailbox=bob)
    assert (received.from_name, received.from_address) == ("Help Desk", "help@example.test")


def test_discard_draft(alice_client: Client, alice: Mailbox) -> None:
    saved = alice_client.post(reverse("webmail:autosave"), form(alice)).json()
    response = alice_client.post(
        reverse("webmail:compose"), form(alice, draft=saved["draft"], action="discard")
    )
    assert response.status_code == 302
    assert not Message.objects.filter(id=saved["draft"]).exists()
    assert counts(alice)["drafts"] == (0, 0)
