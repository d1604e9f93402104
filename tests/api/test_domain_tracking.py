"""Per-domain tracking settings over the API: Mailgun's /v3/domains/{d}/tracking and the native
domain endpoint; per-message options that override them."""

from __future__ import annotations

import pytest

from analytics.models import DomainTracking
from analytics.services.domain_tracking import set_domain_tracking
from mailcore.models import Mailbox, OutboundMessage
from tests.api.conftest import Keys, client_for

pytestmark = pytest.mark.django_db

TRACKING = "/v3/domains/example.test/tracking"


def _row(alice: Mailbox) -> tuple[bool, bool, bool]:
    row = DomainTracking.objects.get(domain=alice.domain)
    return (row.track_opens, row.track_clicks, row.track_unsubscribes)


def test_mailgun_get_shows_defaults_off_then_each_put(alice: Mailbox, keys: Keys) -> None:
    client = client_for(keys.full, basic=True)
    response = client.get(TRACKING)
    assert response.status_code == 200
    assert response.json() == {
        "tracking": {
            "open": {"active": False, "place_at_the_top": False},
            "click": {"active": False},
            "unsubscribe": {"active": False, "html_footer": "", "text_footer": ""},
            "web_scheme": "http",
        }
    }
    response = client.put(f"{TRACKING}/open", {"active": "yes"})
    assert response.status_code == 200
    assert response.json() == {
        "message": "Domain tracking settings have been updated",
        "open": {"active": True, "place_at_the_top": False},
    }
    assert client.put(f"{TRACKING}/click", {"active": "htmlonly"}).json()["click"] == {
        "active": True
    }
    unsubscribe = client.put(f"{TRACKING}/unsubscribe", {"active": "true"}).json()
    assert unsubscribe["unsubscribe"]["active"] is True
    assert _row(alice) == (True, True, True)
    assert client.put(f"{TRACKING}/open", {"active": "false"}).json()["open"]["active"] is False
    assert client.put(f"{TRACKING}/click", {}).json()["click"]["active"] is True  # no change
    assert _row(alice) == (False, True, True)
    tracking = client.get(TRACKING).json()["tracking"]
    assert [tracking[k]["active"] for k in ("open", "click", "unsubscribe")] == [
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    ("kind", "data", "status", "message"),
    [
        ("open", {"active": "maybe"}, 400, "'active' parameter is not valid"),
        ("open", {"active": "htmlonly"}, 400, "'active' parameter is not valid"),
        (
            "unsubscribe",
            {"active": "yes", "html_footer": "<p>Bye</p>"},
            400,
            "'html_footer' is not supported: Mailroom adds headers only",
        ),
        ("bogus", {"active": "yes"}, 404, "Not found"),
    ],
)
def test_mailgun_put_refuses_bad_values_and_changes_nothing(
    alice: Mailbox, keys: Keys, kind: str, data: dict[str, str], status: int, message: str
) -> None:
    set_domain_tracking(alice.domain, {"click": True})
    response = client_for(keys.full, basic=True).put(f"{TRACKING}/{kind}", data)
    assert response.status_code == status
    assert response.json() == {"message": message}
    assert _row(alice) == (False, True, False)


def test_domain_restricted_key_sees_only_its_domain(alice: Mailbox, keys: Keys) -> None:
    from api.services.keys import create_api_key
    from mailcore.models import Domain

    other = Domain.objects.create(organization_id=alice.organization_id, name="news.example.test")
    key = create_api_key(organization_id=alice.organization_id, domain=other).secret
    client = client_for(key, basic=True)
    assert client.get("/v3/domains/news.example.test/tracking").status_code == 200
    response = client.put(f"{TRACKING}/open", {"active": "yes"})
    assert (response.status_code, response.json()) == (404, {"message": "Domain not found"})
    assert not DomainTracking.objects.filter(domain=alice.domain).exists()


def test_native_domain_shows_and_patches_tracking(alice: Mailbox, keys: Keys) -> None:
    client = client_for(keys.full)
    url = "/api/v1/domains/example.test/"
    assert client.get(url).json()["tracking"] == {
        "open": False,
        "click": False,
        "unsubscribe": False,
    }
    response = client.patch(url, {"tracking": {"open": True, "unsubscribe": True}}, format="json")
    assert response.status_code == 200
    assert response.json()["tracking"] == {"open": True, "click": False, "unsubscribe": True}
    response = client.patch(url, {"tracking": {"open": False}}, format="json")
    assert response.json()["tracking"] == {"open": False, "click": False, "unsubscribe": True}
    assert _row(alice) == (False, False, True)
    [listed] = client.get("/api/v1/domains/").json()["items"]
    assert listed["tracking"] == {"open": False, "click": False, "unsubscribe": True}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"tracking": {"click": "maybe"}}, {"tracking.click": ["Must be a valid boolean."]}),
        (
            {"tracking": {"clicks": True}},
            {"tracking.clicks": ["Unknown tracking kind: use open, click or unsubscribe."]},
        ),
        (
            {"tracking": {}},
            {"tracking.non_field_errors": ["Give at least one of open, click, unsubscribe."]},
        ),
        ({}, {"tracking": ["This field is required."]}),
    ],
)
def test_native_patch_refuses_bad_input(
    alice: Mailbox, keys: Keys, body: dict, fields: dict[str, list[str]]
) -> None:
    response = client_for(keys.full).patch("/api/v1/domains/example.test/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid", "message": "Invalid input.", "fields": fields}
    }
    assert not DomainTracking.objects.exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, (None, None)),  # the domain decides at send time
        ({"o:tracking": "no"}, (False, False)),
        ({"o:tracking": "yes", "o:tracking-clicks": "no"}, (True, False)),
        ({"o:tracking-opens": "false"}, (False, None)),
        ({"o:tracking": "htmlonly"}, (True, True)),
    ],
)
def test_mailgun_message_options_store_the_override(
    alice: Mailbox, keys: Keys, options: dict[str, str], expected: tuple
) -> None:
    data = {"from": "alice@example.test", "to": "d@remote.test", "html": "<p>x</p>", **options}
    response = client_for(keys.full, basic=True).post("/v3/example.test/messages", data)
    assert response.status_code == 200, response.content
    message = OutboundMessage.objects.get()
    assert (message.track_opens, message.track_clicks) == expected


def test_mailgun_bad_o_tracking_is_refused(alice: Mailbox, keys: Keys) -> None:
    data = {"from": "alice@example.test", "to": "d@remote.test", "text": "x", "o:tracking": "often"}
    response = client_for(keys.full, basic=True).post("/v3/example.test/messages", data)
    assert (response.status_code, response.json()) == (
        400,
        {"message": "'o:tracking' parameter is not valid"},
    )
    assert not OutboundMessage.objects.exists()
