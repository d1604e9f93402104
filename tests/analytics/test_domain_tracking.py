"""Per-domain tracking settings at send time: the domain's default applies when a message says
nothing, the message's own choice wins both ways, and the delivered bytes show it."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.services.domain_tracking import TrackingSettings, set_domain_tracking, tracking_of
from mailcore.models import Domain, Mailbox
from mailcore.services.outbound import dispatch, submit_outbound
from tests.mailcore import test_outbound_delivery
from tests.mailcore.outbound_peer import PeerHandler
from tests.mailcore.test_outbound_delivery import run, send

peer = test_outbound_delivery.peer  # the real SMTP peer on 127.0.0.1 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

HTML = (
    b"From: alice@example.test\r\nTo: list@remote.test\r\nSubject: News\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<html><body><p>Read <a href="https://news.example.org/a">this</a>.</p></body></html>\r\n'
)


def _look(data: bytes) -> tuple[bool, bool, bool]:
    """(open pixel, rewritten link, List-Unsubscribe) in one delivered message."""
    message = BytesParser(policy=policy.SMTP).parsebytes(data)
    html = message.get_body(("html",)).get_content()
    has_pixel = "https://t.example.test/t/o/" in html
    has_tracked_link = "https://t.example.test/t/c/" in html
    assert has_tracked_link != ('href="https://news.example.org/a"' in html)
    has_unsubscribe = message["List-Unsubscribe"] is not None
    assert has_unsubscribe == (message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click")
    if has_unsubscribe:
        assert message["List-Unsubscribe"].startswith("<https://t.example.test/t/u/")
    return has_pixel, has_tracked_link, has_unsubscribe


@pytest.fixture(autouse=True)
def _tracking_host(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAILROOM_TRACKING_BASE_URL = "https://t.example.test"


def _delivered(peer: PeerHandler) -> dict[str, tuple[bool, bool, bool]]:
    return {t.recipients[0]: _look(t.data) for t in peer.transactions}


def test_domain_settings_apply_when_the_message_says_nothing(
    alice: Mailbox, peer: PeerHandler
) -> None:
    set_domain_tracking(alice.domain, {"open": True, "unsubscribe": True})
    send(alice, "dana@remote.test", raw=HTML)  # says nothing: opens + unsubscribe, no clicks
    send(alice, "erin@remote.test", raw=HTML, track_opens=False, track_clicks=True)
    stats = run()
    assert (stats.delivered, stats.transactions) == (2, 2)
    assert _delivered(peer) == {
        "dana@remote.test": (True, False, True),
        "erin@remote.test": (False, True, True),  # the message wins, both ways
    }


def test_domain_off_leaves_mail_untouched_unless_the_message_asks(
    alice: Mailbox, peer: PeerHandler
) -> None:
    set_domain_tracking(alice.domain, {"open": False, "click": False, "unsubscribe": False})
    send(alice, "dana@remote.test", "erin@remote.test", raw=HTML)
    send(alice, "fay@remote.test", raw=HTML, track_clicks=True)
    stats = run()
    # The untracked message keeps one body for both recipients (one transaction).
    assert (stats.delivered, stats.transactions) == (3, 2)
    untracked, tracked = sorted(peer.transactions, key=lambda t: len(t.recipients), reverse=True)
    assert sorted(untracked.recipients) == ["dana@remote.test", "erin@remote.test"]
    assert HTML.split(b"\r\n\r\n", 1)[1] in untracked.data
    assert _look(untracked.data) == (False, False, False)
    assert _look(tracked.data) == (False, True, False)


def test_a_domain_without_settings_tracks_nothing(alice: Mailbox, peer: PeerHandler) -> None:
    send(alice, "dana@remote.test", raw=HTML)
    run()
    assert _delivered(peer) == {"dana@remote.test": (False, False, False)}


def test_webmail_mail_is_never_tracked_by_the_domain(alice: Mailbox, peer: PeerHandler) -> None:
    set_domain_tracking(alice.domain, {"open": True, "click": True, "unsubscribe": True})
    submit_outbound(
        organization_id=alice.organization_id,
        mail_from="alice@example.test",
        recipients=["dana@remote.test"],
        raw=HTML,
        source="webmail",
    )
    send(alice, "erin@remote.test", raw=HTML)  # the same domain over the API: tracked
    run()
    assert _delivered(peer) == {
        "dana@remote.test": (False, False, False),
        "erin@remote.test": (True, True, True),
    }


def test_claim_resolves_tracking_in_one_query_for_any_number_of_messages(
    alice: Mailbox,
) -> None:
    set_domain_tracking(alice.domain, {"click": True, "unsubscribe": True})
    messages = [
        send(alice, f"r{n}@remote.test", raw=HTML, track_opens=n == 0, track_clicks=n != 1)
        for n in range(3)
    ]
    with CaptureQueriesContext(connection) as queries:
        claim = dispatch.claim_due_deliveries(lease_token="t", limit=10)
    loads = [q["sql"] for q in queries.captured_queries if "analytics_domaintracking" in q["sql"]]
    assert len(loads) == 1
    got = {
        m.id: (c.track_opens, c.track_clicks, c.track_unsubscribes, c.is_tracked)
        for m in messages
        for c in [claim.messages[m.id]]
    }
    assert got == {
        messages[0].id: (True, True, True, True),
        messages[1].id: (False, False, True, True),
        messages[2].id: (False, True, True, True),
    }


def test_operator_sets_tracking_inline_on_the_domain_admin(client, alice: Mailbox) -> None:  # type: ignore[no-untyped-def]
    alice.user.is_staff = alice.user.is_superuser = True
    alice.user.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(alice.user)
    url = f"/admin/mailcore/domain/{alice.domain.id}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="tracking-0-track_unsubscribes"' in page.content
    response = client.post(
        url,
        {
            "organization": alice.organization_id,
            "name": "example.test",
            "is_active": "on",
            "tracking-TOTAL_FORMS": "1",
            "tracking-INITIAL_FORMS": "0",
            "tracking-0-track_opens": "on",
            "tracking-0-track_unsubscribes": "on",
        },
    )
    assert response.status_code == 302
    assert tracking_of(Domain.objects.get(id=alice.domain.id)) == TrackingSettings(
        open=True, click=False, unsubscribe=True
    )
