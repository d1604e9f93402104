"""Every endpoint: alice's key works, charlie's key gets 404 (or sees nothing), a key without
the scope gets 403, no key gets 401 — and refused requests change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from analytics.models import DomainTracking, Event
from api.models import WebhookEndpoint
from api.services.webhooks import create_endpoint
from mailcore.models import Mailbox, Message, OutboundMessage, Suppression
from mailcore.services.outbound.suppression import suppress_address
from tests.api.conftest import Keys, client_for, send_json
from tests.factories import deliver, make_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(alice: Mailbox, keys: Keys) -> dict[str, Any]:
    deliver(make_email(subject="Invoice 42"), "alice@example.test")
    message = Message.objects.get(mailbox=alice)
    response = client_for(keys.full).post("/api/v1/messages/", send_json(), format="json")
    assert response.status_code == 202, response.content
    suppress_address(alice.domain, "gone@remote.test", reason="bounce")
    hook = create_endpoint(alice.organization_id, "http://127.0.0.1:9/hook")
    return {
        "mailbox": alice.id,
        "folder": message.folder_id,
        "message": message.id,
        "outbound": response.json()["id"],
        "hook": hook.id,
    }


# (method, path template, body, scope, status for alice)
ENDPOINTS = [
    ("get", "/api/v1/messages/", None, "send", 200),
    ("post", "/api/v1/messages/", send_json(), "send", 202),
    ("get", "/api/v1/messages/{outbound}/", None, "send", 200),
    (
        "post",
        "/api/v1/messages/raw/",
        {
            "to": ["x@remote.test"],
            "mime": "RnJvbTogYWxpY2VAZXhhbXBsZS50ZXN0DQpTdWJqZWN0OiByYXcNCg0KYm9keQ0K",
        },
        "send",
        202,
    ),  # noqa: E501
    ("get", "/api/v1/domains/", None, "domains", 200),
    ("get", "/api/v1/domains/example.test/", None, "domains", 200),
    ("patch", "/api/v1/domains/example.test/", {"tracking": {"click": True}}, "domains", 200),
    ("get", "/api/v1/suppressions/?domain=example.test", None, "suppressions", 200),
    (
        "post",
        "/api/v1/suppressions/",
        {"domain": "example.test", "address": "n@r.test"},
        "suppressions",
        201,
    ),  # noqa: E501
    ("delete", "/api/v1/suppressions/example.test/gone@remote.test/", None, "suppressions", 204),
    ("get", "/api/v1/events/", None, "events", 200),
    ("get", "/api/v1/stats/", None, "events", 200),
    ("get", "/api/v1/webhooks/", None, "webhooks", 200),
    ("post", "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/x"}, "webhooks", 201),
    ("get", "/api/v1/webhooks/{hook}/", None, "webhooks", 200),
    ("get", "/api/v1/webhooks/{hook}/deliveries/", None, "webhooks", 200),
    ("post", "/api/v1/webhooks/{hook}/test/", None, "webhooks", 200),
    ("delete", "/api/v1/webhooks/{hook}/", None, "webhooks", 204),
    ("get", "/api/v1/mailboxes/", None, "mailboxes", 200),
    ("get", "/api/v1/mailboxes/{mailbox}/folders/", None, "mailboxes", 200),
    ("get", "/api/v1/mailboxes/{mailbox}/messages/?q=invoice", None, "mailboxes", 200),
    ("get", "/api/v1/mailbox-messages/{message}/", None, "mailboxes", 200),
    ("get", "/api/v1/mailbox-messages/{message}/raw/", None, "mailboxes", 200),
    ("patch", "/api/v1/mailbox-messages/{message}/", {"is_seen": True}, "mailboxes", 200),
    ("delete", "/api/v1/mailbox-messages/{message}/", None, "mailboxes", 200),
    (
        "post",
        "/v3/example.test/messages",
        {"from": "alice@example.test", "to": "d@r.test", "text": "x"},
        "send",
        200,
    ),  # noqa: E501
    (
        "post",
        "/v3/example.test/messages.mime",
        {"to": "d@r.test", "message": "From: alice@example.test\r\n\r\nhi\r\n"},
        "send",
        200,
    ),  # noqa: E501
    ("get", "/v3/example.test/events", None, "events", 200),
    ("get", "/v3/example.test/stats/total?event=accepted", None, "events", 200),
    ("get", "/v3/example.test/bounces", None, "suppressions", 200),
    ("post", "/v3/example.test/bounces", {"address": "b@r.test"}, "suppressions", 200),
    ("get", "/v3/example.test/bounces/gone@remote.test", None, "suppressions", 200),
    ("delete", "/v3/example.test/bounces/gone@remote.test", None, "suppressions", 200),
    ("get", "/v3/example.test/unsubscribes", None, "suppressions", 200),
    ("get", "/v3/example.test/complaints", None, "suppressions", 200),
    ("get", "/v3/domains/example.test/tracking", None, "domains", 200),
    ("put", "/v3/domains/example.test/tracking/open", {"active": "yes"}, "domains", 200),
]
IDS = [f"{m} {p}" for m, p, *_ in ENDPOINTS]
# Endpoints with no object in the path: another tenant gets its own (empty) view, not a 404.
LISTS = {
    "/api/v1/messages/",
    "/api/v1/messages/raw/",
    "/api/v1/domains/",
    "/api/v1/events/",
    "/api/v1/stats/",
    "/api/v1/webhooks/",
    "/api/v1/mailboxes/",
    "/api/v1/suppressions/",
}


def call(key: str | None, method: str, path: str, body: Any, world: dict[str, Any]) -> Any:
    client = client_for(key)
    url = path.format(**world)
    form = url.startswith("/v3/")
    return getattr(client, method)(url, body, format=None if form else "json")


def snapshot() -> tuple[int, ...]:
    return (
        OutboundMessage.objects.count(),
        Suppression.objects.count(),
        WebhookEndpoint.objects.count(),
        Message.objects.filter(is_seen=True).count(),
        Message.objects.count(),
        Event.objects.count(),
        DomainTracking.objects.count(),
    )


@pytest.mark.parametrize(("method", "path", "body", "scope", "expected"), ENDPOINTS, ids=IDS)
def test_alice_key_works(keys: Keys, world, method, path, body, scope, expected) -> None:  # type: ignore[no-untyped-def]
    response = call(keys.full, method, path, body, world)
    assert response.status_code == expected, response.content
    if response.status_code != 204 and "raw" not in path:
        assert response["Content-Type"] == "application/json"
        assert response["X-RateLimit-Limit"] == "4000"


@pytest.mark.parametrize(("method", "path", "body", "scope", "expected"), ENDPOINTS, ids=IDS)
def test_other_tenant_gets_404(keys: Keys, world, method, path, body, scope, expected) -> None:  # type: ignore[no-untyped-def]
    before = snapshot()
    response = call(keys.other, method, path, body, world)
    bare = path.split("?")[0]
    if bare in LISTS and "domain=" not in path:
        # No object in the path: charlie works on his own tenant and never sees alice's data.
        if method == "get":
            assert response.status_code == 200
            assert b"example.test" not in response.content
            assert b"alice" not in response.content
        elif bare == "/api/v1/webhooks/":
            assert response.status_code == 201  # his own endpoint
        else:  # sending from alice's domain, suppressing in it
            assert response.status_code in (400, 404), response.content
            assert snapshot() == before
    else:
        assert response.status_code == 404, response.content
        assert snapshot() == before
        if bare.startswith("/v3/"):
            assert set(response.json()) == {"message"}
        else:
            assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("method", "path", "body", "scope", "expected"), ENDPOINTS, ids=IDS)
def test_missing_scope_gets_403(keys: Keys, world, method, path, body, scope, expected) -> None:  # type: ignore[no-untyped-def]
    before = snapshot()
    response = call(keys.none, method, path, body, world)
    assert response.status_code == 403, response.content
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "body", "scope", "expected"), ENDPOINTS, ids=IDS)
def test_no_key_gets_401(keys: Keys, world, method, path, body, scope, expected) -> None:  # type: ignore[no-untyped-def]
    before = snapshot()
    response = call(None, method, path, body, world)
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Basic realm="MG API"'
    assert snapshot() == before


def test_wrong_and_revoked_keys_get_401(keys: Keys, world) -> None:  # type: ignore[no-untyped-def]
    from api.models import ApiKey
    from api.services.keys import find_api_key, revoke_api_key

    assert client_for("mr_nope").get("/api/v1/domains/").status_code == 401
    api_key = find_api_key(keys.full)
    assert api_key is not None and revoke_api_key(api_key) is True
    response = client_for(keys.full).get("/api/v1/domains/")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "authentication_failed", "message": "Invalid or revoked API key."}
    }
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None


def test_basic_auth_mailgun_form(keys: Keys, world) -> None:  # type: ignore[no-untyped-def]
    response = client_for(keys.full, basic=True).get("/v3/example.test/bounces")
    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "address": "gone@remote.test",
                "code": "550",
                "error": "",
                "tags": ["*"],
                "created_at": response.json()["items"][0]["created_at"],
            }
        ],
        "paging": {},
    }


def test_domain_says_when_the_guardrail_paused_sending(keys: Keys, alice: Mailbox) -> None:
    from analytics.models import DomainReputation
    from mailcore.models import Domain

    url = "/api/v1/domains/example.test/"
    assert client_for(keys.full).get(url).json()["sending_paused"] is False
    domain = Domain.objects.get(name="example.test")
    DomainReputation.objects.create(
        domain_id=domain.id,
        domain_name=domain.name,
        organization_id=domain.organization_id,
        status=DomainReputation.Status.PAUSED,
    )
    cache.clear()  # the flag is cached for 30 s
    assert client_for(keys.full).get(url).json()["sending_paused"] is True
