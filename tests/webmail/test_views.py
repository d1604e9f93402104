"""Webmail pages: lists and pagination, reading, security headers, actions, search."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from mailcore.models import Attachment, Mailbox, Message
from mailcore.services import messages as service
from tests.webmail.conftest import (
    PNG_1PX,
    counts,
    deliver_raw,
    folder,
    html_email,
    receive,
)
from webmail.middleware import APP_POLICY
from webmail.models import Preferences

pytestmark = pytest.mark.django_db

HOSTILE = """
<p onclick="alert(1)">Hello <b>there</b></p>
<script>parent.document.title='pwned'</script>
<img src="http://tracker.evil.test/pixel.gif" alt="pixel">
<img src="cid:logo@x">
<a href="javascript:alert(1)">click</a> <a href="https://ok.test/">ok</a>
<div style="background:url(http://evil.test/bg.png);color:red">styled</div>
<form action="http://evil.test/"><input name="password"></form>
<svg onload="alert(1)"><circle r="1"/></svg>
<meta http-equiv="refresh" content="0;url=http://evil.test/">
<base href="http://evil.test/">
"""


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="row[^"]*" data-id="(\d+)"', html)]


def test_folder_list_query_count_does_not_grow(
    alice_client: Client, alice: Mailbox, django_assert_num_queries
) -> None:
    inbox = folder(alice, "inbox")
    url = reverse("webmail:folder", args=[inbox.id])
    receive(alice, "one")
    # session, user, folder, preferences, sidebar folders, sidebar labels, page, row labels
    with django_assert_num_queries(8):
        assert alice_client.get(url).status_code == 200
    for i in range(20):
        receive(alice, f"more {i}", minutes=i + 1)
    with django_assert_num_queries(8):
        response = alice_client.get(url)
    assert len(row_ids(response.content.decode())) == 21


def test_label_and_search_lists_query_count(
    alice_client: Client, alice: Mailbox, django_assert_num_queries
) -> None:
    label = service.create_label(alice, "Work", "#336699")
    messages = [receive(alice, f"Work item {i} quokka", minutes=i) for i in range(3)]
    service.set_label(messages, label, True)
    with django_assert_num_queries(8):
        response = alice_client.get(reverse("webmail:label", args=[label.id]))
    assert row_ids(response.content.decode()) == [m.id for m in reversed(messages)]
    response = alice_client.get(reverse("webmail:search") + "?q=quokka")
    assert row_ids(response.content.decode()) == [m.id for m in reversed(messages)]


def test_keyset_pagination_newest_first(alice_client: Client, alice: Mailbox) -> None:
    Preferences.objects.create(user=alice.user, page_size=25)
    messages = [receive(alice, f"n{i}", minutes=i) for i in range(30)]
    newest_first = [m.id for m in reversed(messages)]
    url = reverse("webmail:folder", args=[folder(alice, "inbox").id])
    page1 = alice_client.get(url).content.decode()
    assert row_ids(page1) == newest_first[:25]
    older = re.search(r'href="\?before=([^"]+)" rel="next"', page1).group(1)
    assert 'rel="prev"' not in page1
    page2 = alice_client.get(f"{url}?before={older}").content.decode()
    assert row_ids(page2) == newest_first[25:]
    assert 'rel="next"' not in page2
    newer = re.search(r'href="\?after=([^"]+)" rel="prev"', page2).group(1)
    back = alice_client.get(f"{url}?after={newer}").content.decode()
    assert row_ids(back) == newest_first[:25]
    assert alice_client.get(f"{url}?before=garbage").status_code == 200


def test_rows_endpoint_returns_only_newer_rows(alice_client: Client, alice: Mailbox) -> None:
    first = receive(alice, "first", minutes=0)
    inbox = folder(alice, "inbox")
    url = reverse("webmail:folder_rows", args=[inbox.id])
    data = alice_client.get(url).json()
    assert row_ids(data["html"]) == [first.id]
    cursor = re.search(r'data-cursor="([^"]+)"', data["html"]).group(1)
    assert alice_client.get(url, {"after": cursor}).json()["count"] == 0
    second = receive(alice, "second", minutes=1, sender="Erin <erin@remote.test>")
    data = alice_client.get(url, {"after": cursor}).json()
    assert (data["count"], row_ids(data["html"])) == (1, [second.id])
    assert data["newest"] == {"from": "Erin", "subject": "second"}


def test_state_reports_every_visible_folder(
    bob_client: Client, alice: Mailbox, bob: Mailbox
) -> None:
    receive(alice, "for alice")
    folders = bob_client.get(reverse("webmail:state")).json()["folders"]
    by_id = {f["id"]: f for f in folders}
    assert by_id[folder(alice, "inbox").id] == {
        "id": folder(alice, "inbox").id,
        "total": 1,
        "unread": 1,
    }
    assert folder(bob, "inbox").id in by_id
    assert len(folders) == 12  # six each: bob's own and alice's shared


def test_security_headers_on_app_pages(alice_client: Client, alice: Mailbox) -> None:
    response = alice_client.get(reverse("webmail:folder", args=[folder(alice, "inbox").id]))
    assert response["Content-Security-Policy"] == APP_POLICY
    assert "script-src 'self'" in APP_POLICY and "unsafe-inline" not in APP_POLICY
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "<script>" not in response.content.decode()  # only <script src=...> files
    login = Client().get(reverse("webmail:login"))
    assert login["Content-Security-Policy"] == APP_POLICY


def test_conversation_groups_thread_and_marks_it_read(alice_client: Client, alice: Mailbox) -> None:
    root = receive(alice, "Trip", message_id="<root@remote.test>", minutes=0)
    service.set_seen([root], True)
    middle = receive(
        alice,
        "Re: Trip",
        minutes=1,
        message_id="<mid@remote.test>",
        headers={"In-Reply-To": "<root@remote.test>"},
        body="Visit https://example.org/trip?a=1&b=<2> now",
    )
    last = receive(
        alice,
        "Re: Trip",
        minutes=2,
        headers={"In-Reply-To": "<mid@remote.test>", "References": "<root@remote.test>"},
    )
    assert {root.thread_id, middle.thread_id, last.thread_id} == {root.thread_id}
    assert counts(alice)["inbox"] == (3, 2)
    html = alice_client.get(reverse("webmail:message", args=[middle.id])).content.decode()
    sections = re.findall(r'<section class="message ([a-z ]+)" data-id="(\d+)"', html)
    assert sections == [
        ("collapsed", str(root.id)),  # earlier and read
        ("expanded opened", str(middle.id)),
        ("expanded", str(last.id)),  # newest last
    ]
    assert (
        '<a href="https://example.org/trip?a=1&amp;b=" target="_blank" rel="noopener noreferrer">'
        in html
    )
    assert counts(alice)["inbox"] == (3, 0)
    assert Message.objects.filter(thread_id=root.thread_id, is_seen=False).count() == 0


def test_html_body_is_sanitized_and_served_under_its_own_policy(
    alice_client: Client, alice: Mailbox
) -> None:
    message = deliver_raw(
        html_email(to=alice.address, subject="Hostile", html=HOSTILE, inline_png_cid="logo@x"),
        alice,
    )
    page = alice_client.get(reverse("webmail:message", args=[message.id])).content.decode()
    frame = re.search(r"<iframe [^>]+>", page).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame
    assert "allow-scripts" not in frame and "allow-same-origin" not in frame
    assert "Remote images are hidden" in page
    url = reverse("webmail:message_body", args=[message.id])
    response = alice_client.get(url)
    assert response["Content-Security-Policy"] == (
        "default-src 'none'; img-src 'self' http://testserver data:; "
        "style-src 'unsafe-inline'; frame-ancestors 'self'"
    )
    body = response.content.decode()
    for needle in (
        "<script",
        "onclick",
        "onload",
        "javascript:",
        "<form",
        "<svg",
        "<meta http",
        "<base",
        "tracker.evil.test",
        "evil.test/bg.png",
    ):
        assert needle not in body, needle
    cid = re.search(r'<img src="([^"]+)">', body).group(1).replace("&amp;", "&")
    assert cid.startswith(f"/message/{message.id}/part/")
    assert Client().get(cid).content == PNG_1PX
    assert '<a href="https://ok.test/" target="_blank" rel="noopener noreferrer">ok</a>' in body
    shown = alice_client.get(url + "?images=1")
    assert "http://tracker.evil.test/pixel.gif" in shown.content.decode()
    assert shown["Content-Security-Policy"].startswith(
        "default-src 'none'; img-src 'self' http://testserver data: https: http:;"
    )


def test_always_show_images_from_sender(alice_client: Client, alice: Mailbox) -> None:
    message = deliver_raw(
        html_email(to=alice.address, subject="News", html='<img src="https://cdn.test/a.png">'),
        alice,
    )
    url = reverse("webmail:message_body", args=[message.id])
    assert "cdn.test" not in alice_client.get(url).content.decode()
    alice_client.post(reverse("webmail:message_trust", args=[message.id]))
    assert '<img src="https://cdn.test/a.png">' in alice_client.get(url).content.decode()


def test_attachment_and_raw_downloads_are_not_rendered(
    alice_client: Client, alice: Mailbox
) -> None:
    message = deliver_raw(
        html_email(
            to=alice.address,
            subject="Files",
            html="<p>x</p>",
            attachments=[("évil.html", "text/html", b"<script>alert(1)</script>")],
        ),
        alice,
    )
    attachment = Attachment.objects.get(message=message, filename="évil.html")
    response = alice_client.get(reverse("webmail:attachment", args=[attachment.id]))
    assert response.content == b"<script>alert(1)</script>"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"?vil.html\"; filename*=UTF-8''%C3%A9vil.html"
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    raw = alice_client.get(reverse("webmail:message_raw", args=[message.id]))
    assert raw["Content-Type"] == "text/plain; charset=utf-8"
    assert raw["X-Content-Type-Options"] == "nosniff"
    assert raw.content.decode().startswith("Return-Path: <dana@remote.test>\r\nReceived: ")


def test_actions_endpoint_with_undo(alice_client: Client, alice: Mailbox) -> None:
    one, two = receive(alice, "one"), receive(alice, "two")
    json = {"HTTP_ACCEPT": "application/json"}
    response = alice_client.post(
        reverse("webmail:actions"), {"ids": [one.id, two.id], "action": "trash"}, **json
    )
    data = response.json()
    assert (data["ok"], data["message"]) == (True, "Moved to Trash: 2 messages.")
    assert counts(alice)["trash"] == (2, 2)
    response = alice_client.post(reverse("webmail:undo"), {"token": data["undo"]}, **json)
    assert response.json()["message"] == "Undone: 2 messages put back."
    assert counts(alice)["inbox"] == (2, 2)
    assert counts(alice)["trash"] == (0, 0)
    response = alice_client.post(reverse("webmail:actions"), {"ids": [one.id], "action": "read"})
    assert response.status_code == 302  # without script: a redirect and a notice
    assert counts(alice)["inbox"] == (2, 1)
    response = alice_client.post(reverse("webmail:actions"), {"ids": [], "action": "read"}, **json)
    assert response.status_code == 400


def test_empty_trash_from_the_page(alice_client: Client, alice: Mailbox) -> None:
    message = receive(alice)
    service.move_to_role(alice.user, [message], "trash")
    response = alice_client.post(reverse("webmail:folder_empty", args=[folder(alice, "trash").id]))
    assert response.status_code == 302
    assert counts(alice)["trash"] == (0, 0)
    assert not Message.objects.filter(id=message.id).exists()


def test_search_scopes_to_the_user(
    alice_client: Client, charlie_client: Client, alice: Mailbox, charlie: Mailbox
) -> None:
    hit = receive(alice, "Budget platypus review")
    receive(alice, "Something else")
    receive(charlie, "Charlie's platypus")
    html = alice_client.get(reverse("webmail:search"), {"q": "platypus"}).content.decode()
    assert row_ids(html) == [hit.id]
    html = charlie_client.get(reverse("webmail:search"), {"q": "platypus"}).content.decode()
    assert hit.id not in row_ids(html)
    html = alice_client.get(reverse("webmail:search"), {"q": "before:2026-13-45"}).content.decode()
    assert "Could not understand the search" in html


def test_bob_acts_on_the_shared_mailbox_and_sees_both_in_sidebar(
    bob_client: Client, alice: Mailbox, bob: Mailbox
) -> None:
    message = receive(alice)
    html = bob_client.get(reverse("webmail:index"), follow=True).content.decode()
    assert "alice@example.test" in html and "bob@example.test" in html
    response = bob_client.post(
        reverse("webmail:actions"),
        {"ids": [message.id], "action": "archive"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    assert counts(alice)["archive"] == (1, 1)


def test_index_without_mailbox(db: None) -> None:
    from mailcore.models import User

    user = User.objects.create_user("operator", password="x")
    client = Client()
    client.force_login(user)
    response = client.get(reverse("webmail:index"))
    assert "This login has no mailbox" in response.content.decode()
