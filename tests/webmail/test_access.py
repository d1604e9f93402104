"""Who sees what: alice owns, bob has alice's mailbox shared, charlie gets 404 everywhere."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from mailcore.models import Attachment, Label, Mailbox, Message
from mailcore.services.compose_mime import DraftContent
from tests.webmail.conftest import PNG_1PX, counts, deliver_raw, folder, html_email, receive
from webmail.services import drafts
from webmail.views.reading import part_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_mail(alice: Mailbox) -> Message:
    raw = html_email(
        to=alice.address,
        subject="Quarterly numbers zebrafish",
        html='<p>See <img src="cid:chart@x"> attached</p>',
        inline_png_cid="chart@x",
        attachments=[("report.pdf", "application/pdf", b"%PDF-1.4 fake")],
    )
    return deliver_raw(raw, alice)


def urls_for(message: Message) -> list[str]:
    attachment = Attachment.objects.get(message=message, filename="report.pdf")
    return [
        reverse("webmail:message", args=[message.id]),
        reverse("webmail:message_body", args=[message.id]),
        reverse("webmail:message_raw", args=[message.id]),
        reverse("webmail:attachment", args=[attachment.id]),
        reverse("webmail:folder", args=[message.folder_id]),
        reverse("webmail:folder_rows", args=[message.folder_id]),
        reverse("webmail:search") + f"?q=zebrafish&folder={message.folder_id}",
        reverse("webmail:search") + f"?q=zebrafish&mailbox={message.mailbox_id}",
        reverse("webmail:compose") + f"?source={message.id}&mode=reply",
        reverse("webmail:compose") + f"?draft={message.id}",
    ]


def test_owner_and_sharer_can_read_everything(
    alice_client: Client, bob_client: Client, alices_mail: Message
) -> None:
    for client in (alice_client, bob_client):
        for url in urls_for(alices_mail):
            assert client.get(url).status_code == 200, url


def test_charlie_gets_404_on_every_url(charlie_client: Client, alices_mail: Message) -> None:
    before = counts(alices_mail.mailbox)
    for url in urls_for(alices_mail):
        assert charlie_client.get(url).status_code == 404, url
    label = Label.objects.create(
        organization_id=alices_mail.organization_id, mailbox=alices_mail.mailbox, name="Work"
    )
    posts = [
        (reverse("webmail:actions"), {"ids": [alices_mail.id], "action": "read"}),
        (reverse("webmail:actions"), {"ids": [alices_mail.id], "action": "trash"}),
        (reverse("webmail:actions"), {"ids": [alices_mail.id], "action": "delete"}),
        (reverse("webmail:folder_empty", args=[alices_mail.folder_id]), {}),
        (reverse("webmail:label_update", args=[label.id]), {"delete": "1"}),
        (reverse("webmail:message_trust", args=[alices_mail.id]), {}),
    ]
    for url, data in posts:
        assert charlie_client.post(url, data).status_code == 404, url
    alices_mail.refresh_from_db()
    assert alices_mail.is_seen is False
    assert alices_mail.folder.role == "inbox"
    assert Label.objects.filter(id=label.id).exists()
    assert counts(alices_mail.mailbox) == before


def test_charlie_cannot_move_his_mail_into_alices_folder(
    charlie_client: Client, charlie: Mailbox, alice: Mailbox
) -> None:
    own = receive(charlie, "Mine")
    response = charlie_client.post(
        reverse("webmail:actions"),
        {"ids": [own.id], "action": "move", "folder": folder(alice, "archive").id},
    )
    assert response.status_code == 404
    own.refresh_from_db()
    assert own.folder.role == "inbox"


def test_charlie_cannot_attach_alices_attachment_or_open_her_draft(
    charlie_client: Client, alices_mail: Message, alice: Mailbox
) -> None:
    attachment = Attachment.objects.get(message=alices_mail, filename="report.pdf")
    draft = drafts.save_draft(
        alice, DraftContent(from_name="", from_address=alice.address, subject="Secret")
    )
    response = charlie_client.post(
        reverse("webmail:compose"),
        {
            "sender": f"m:{Mailbox.objects.get(address='charlie@other.test').id}",
            "to": "charlie@other.test",
            "attachment": f"a:{attachment.id}",
            "action": "save",
        },
    )
    assert response.status_code == 404
    response = charlie_client.post(
        reverse("webmail:autosave"),
        {
            "sender": f"m:{Mailbox.objects.get(address='charlie@other.test').id}",
            "draft": draft.id,
            "subject": "Overwritten",
        },
    )
    assert response.status_code == 404
    draft.refresh_from_db()
    assert draft.subject == "Secret"
    assert Message.objects.filter(mailbox__address="charlie@other.test").count() == 0


def test_signed_part_url_is_bound_to_user_and_part(
    client: Client, alice: Mailbox, charlie: Mailbox, alices_mail: Message
) -> None:
    inline = Attachment.objects.get(message=alices_mail, content_id="chart@x")
    good = part_url(alice.user, alices_mail, inline.path)
    response = client.get(good)  # no session: the token authorizes
    assert response.status_code == 200
    assert response.content == PNG_1PX
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    # A token minted for charlie does not open alice's message; a tampered path neither.
    assert client.get(part_url(charlie.user, alices_mail, inline.path)).status_code == 404
    other = reverse("webmail:message_part", args=[alices_mail.id, "3"])
    assert client.get(other + "?" + good.split("?", 1)[1]).status_code == 404
    assert client.get(other + "?t=forged").status_code == 404


def test_websocket_group_is_per_user_and_anonymous_pages_redirect(client: Client) -> None:
    response = client.get(reverse("webmail:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("webmail:login"))
    assert client.get(reverse("webmail:state")).status_code == 302
