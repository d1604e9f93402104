"""Signed tracking links: opens, clicks, one-click unsubscribe, machine opens, instrumenting."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from urllib.parse import urlsplit

import pytest
from django.test import Client

from analytics.models import Event
from analytics.services import batch, tracking
from analytics.services.tracking import Target
from mailcore.models import Delivery, Mailbox, Suppression
from mailcore.services.outbound import submit_outbound

pytestmark = pytest.mark.django_db(transaction=True)

HTML_MAIL = (
    b"From: alice@example.test\r\nTo: carol@remote.test\r\nSubject: News\r\n"
    b"Message-ID: <n1@example.test>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee https://shop.test/a\r\n"
    b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<html><body><p><a href="https://shop.test/a?x=1&amp;y=2">Shop</a> '
    b'<a href="mailto:help@example.test">Help</a></p></body></html>\r\n--b1--\r\n'
)


@pytest.fixture
def delivery(alice: Mailbox) -> Delivery:
    message = submit_outbound(
        organization_id=alice.organization_id,
        mail_from="alice@example.test",
        recipients=["carol@remote.test"],
        raw=HTML_MAIL,
        source="api",
        tags=["news"],
    )
    return Delivery.objects.get(message=message)


def _target(delivery: Delivery, url: str = "") -> Target:
    return Target(delivery.organization_id, delivery.id, delivery.message_id, url)


def _path(url: str) -> str:
    return urlsplit(url).path


def _tracked() -> list[tuple[str, str]]:
    batch.buffer.flush()
    return list(
        Event.objects.filter(type__in=["opened", "clicked", "unsubscribed"])
        .order_by("id")
        .values_list("type", "recipient")
    )


def test_instrument_rewrites_links_adds_pixel_and_unsubscribe_headers(delivery: Delivery) -> None:
    out = tracking.instrument_message(
        HTML_MAIL,
        organization_id=delivery.organization_id,
        delivery_id=delivery.id,
        message_id=delivery.message_id,
    )
    message = BytesParser(policy=policy.SMTP).parsebytes(out)
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://127.0.0.1:8000/t/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",)).get_content()
    plain = message.get_body(("plain",)).get_content()
    assert "See https://shop.test/a" in plain
    links = re.findall(r'href="([^"]+)"', html)
    assert links[1] == "mailto:help@example.test"
    assert links[0].startswith("http://127.0.0.1:8000/t/c/")
    clicked = tracking.read_token("click", _path(links[0]).split("/")[-1].replace("&amp;", "&"))
    assert clicked.url == "https://shop.test/a?x=1&y=2"
    assert re.search(r'<img src="http://127\.0\.0\.1:8000/t/o/[^"]+\.gif"[^>]*/></body>', html)
    assert (
        tracking.instrument_message(
            HTML_MAIL, organization_id=1, track_opens=False, track_clicks=False
        )
        == HTML_MAIL
    )


def test_open_recorded_once_per_request_and_machine_opens_flagged(delivery: Delivery) -> None:
    url = _path(tracking.tracking_url("open", _target(delivery)))
    client = Client()
    response = client.get(url, HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux) Firefox/140.0")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert _tracked() == [("opened", "carol@remote.test")]
    client.get(url, HTTP_USER_AGENT="Mozilla/5.0 (via ggpht.com GoogleImageProxy)")
    client.get(url, HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="17.58.101.3")
    assert _tracked() == [("opened", "carol@remote.test")] * 3
    payloads = [e.payload for e in Event.objects.filter(type="opened").order_by("id")]
    assert [(p["machine"], p.get("machine_reason")) for p in payloads] == [
        (False, None),
        (True, "google_proxy"),
        (True, "apple_mpp"),
    ]
    event = Event.objects.filter(type="opened").first()
    assert (event.message_id, event.tags, event.payload["domain"]) == (
        delivery.message_id,
        ["news"],
        "example.test",
    )


def test_forged_or_altered_tokens_are_refused_and_record_nothing(delivery: Delivery) -> None:
    client = Client()
    good = _path(tracking.tracking_url("click", _target(delivery, "https://shop.test/")))
    token = good.split("/")[-1]
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.get(f"/t/c/{altered}").status_code == 404
    assert client.get("/t/c/not-a-token").status_code == 404
    open_token = tracking.make_token("open", _target(delivery))
    assert client.get(f"/t/c/{open_token}").status_code == 404  # another kind's token
    assert client.get(f"/t/o/{token}.gif").status_code == 404
    assert client.post(f"/t/u/{open_token}", {"List-Unsubscribe": "One-Click"}).status_code == 404
    evil = tracking.make_token("click", _target(delivery, "javascript:alert(1)"))
    assert client.get(f"/t/c/{evil}").status_code == 404
    assert _tracked() == []
    assert Suppression.objects.count() == 0


def test_valid_click_redirects_to_the_signed_url(delivery: Delivery) -> None:
    url = _path(tracking.tracking_url("click", _target(delivery, "https://shop.test/a?x=1")))
    response = Client().get(url, HTTP_USER_AGENT="Mozilla/5.0 Firefox/140.0")
    assert response.status_code == 302
    assert response["Location"] == "https://shop.test/a?x=1"
    assert _tracked() == [("clicked", "carol@remote.test")]
    assert Event.objects.get(type="clicked").payload["url"] == "https://shop.test/a?x=1"


def test_one_click_unsubscribe_suppresses_once(delivery: Delivery) -> None:
    url = _path(tracking.tracking_url("unsubscribe", _target(delivery)))
    client = Client(enforce_csrf_checks=True)
    page = client.get(url)
    assert page.status_code == 200
    assert Suppression.objects.count() == 0  # a GET (link scanner) changes nothing
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    again = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.domain_id) == (
        "carol@remote.test",
        "unsubscribe",
        delivery.message.domain_id,
    )
    assert _tracked() == [("unsubscribed", "carol@remote.test")]
    assert Event.objects.get(type="unsubscribed").payload["one_click"] is True
