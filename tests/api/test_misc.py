"""The key command, the offline docs page, Mailgun-style validation errors."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from api.models import ApiKey
from api.services.keys import find_api_key, hash_key
from mailcore.models import Mailbox, OutboundMessage
from tests.api.conftest import Keys, client_for

pytestmark = pytest.mark.django_db


def test_createapikey_prints_the_key_once_and_stores_a_hash(alice: Mailbox) -> None:
    out = io.StringIO()
    call_command(
        "createapikey",
        "--domain",
        "example.test",
        "--scopes",
        "send,events",
        "--bind-domain",
        stdout=out,
    )
    secret = out.getvalue().strip()
    api_key = ApiKey.objects.get()
    assert secret.startswith(f"mr_{api_key.prefix}_")
    assert api_key.key_hash == hash_key(secret)
    assert secret not in str(ApiKey.objects.values().get())
    assert (api_key.scopes, api_key.domain_id, api_key.organization_id) == (
        ["events", "send"],
        alice.domain_id,
        alice.organization_id,
    )
    assert find_api_key(secret) == api_key
    with pytest.raises(CommandError, match="unknown scopes: fly"):
        call_command("createapikey", "--domain", "example.test", "--scopes", "fly")
    with pytest.raises(CommandError, match="No such domain"):
        call_command("createapikey", "--domain", "nope.test")
    assert ApiKey.objects.count() == 1


def test_domain_bound_key_cannot_send_from_another_domain(alice: Mailbox) -> None:
    from api.services.keys import create_api_key
    from mailcore.services.provisioning import create_domain

    other = create_domain("second.test")
    other.organization_id = alice.organization_id
    other.save()
    key = create_api_key(organization_id=alice.organization_id, domain=alice.domain).secret
    client = client_for(key)
    response = client.post(
        "/v3/second.test/messages", {"from": "a@second.test", "to": "x@r.test", "text": "t"}
    )
    assert response.status_code == 404
    assert response.json() == {"message": "Domain not found"}
    assert OutboundMessage.objects.count() == 0


def test_docs_and_schema_work_offline(client) -> None:  # type: ignore[no-untyped-def]
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/v3/{domain}/messages" in schema.json()["paths"]
    for page in ("/api/docs/", "/api/redoc/"):
        html = client.get(page).content.decode()
        assert "drf_spectacular_sidecar" in html
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"to": "x@r.test", "text": "t"}, "from parameter is missing"),
        ({"from": "alice@example.test", "text": "t"}, "to parameter is missing"),
        (
            {"from": "alice@example.test", "to": "x@r.test"},
            "Need at least one of text, html or an attachment.",
        ),
        (
            {"from": "alice@example.test", "to": "x@r.test", "text": "t", "o:deliverytime": "soon"},
            "o:deliverytime parameter is not valid",
        ),
        (
            {
                "from": "alice@example.test",
                "to": "x@r.test",
                "text": "t",
                "recipient-variables": "{bad",
            },
            "recipient-variables parameter is not a valid JSON",
        ),
        (
            {
                "from": "alice@example.test",
                "to": "x@r.test",
                "text": "t",
                "o:tracking-opens": "maybe",
            },
            "'o:tracking-opens' parameter is not valid",
        ),
    ],
)
def test_mailgun_validation_errors(keys: Keys, data, message) -> None:  # type: ignore[no-untyped-def]
    response = client_for(keys.full, basic=True).post("/v3/example.test/messages", data)
    assert response.status_code == 400
    assert response.json() == {"message": message}
    assert OutboundMessage.objects.count() == 0


def test_mailgun_testmode_and_mime(keys: Keys) -> None:
    client = client_for(keys.full, basic=True)
    test_mode = client.post(
        "/v3/example.test/messages",
        {"from": "alice@example.test", "to": "x@r.test", "text": "t", "o:testmode": "yes"},
    )
    assert test_mode.json() == {"id": "<test-mode@example.test>", "message": "Queued. Thank you."}
    assert OutboundMessage.objects.count() == 0
    mime = b"From: Alice <alice@example.test>\r\nSubject: Mime\r\n\r\nhello\r\n"
    response = client.post(
        "/v3/example.test/messages.mime",
        {"to": ["a@r.test", "b@r.test"], "message": io.BytesIO(mime)},
    )
    message = OutboundMessage.objects.get()
    assert response.json() == {"id": f"<{message.message_id}>", "message": "Queued. Thank you."}
    assert (message.subject, message.mail_from) == ("Mime", "alice@example.test")
    assert sorted(message.deliveries.values_list("recipient", flat=True)) == [
        "a@r.test",
        "b@r.test",
    ]


def test_admin_creates_a_key_shows_it_once_and_revokes(alice: Mailbox, client) -> None:  # type: ignore[no-untyped-def]
    from mailcore.models import User

    User.objects.create_superuser("root@example.test", "root@example.test", "pw-123456789")
    client.force_login(User.objects.get(username="root@example.test"))
    response = client.post(
        "/admin/api/apikey/add/",
        {
            "organization": alice.organization_id,
            "domain": "",
            "name": "ci",
            "scopes": "send,events",
            "rate_per_second": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    shown = [str(m) for m in response.context["messages"] if "Copy it now" in str(m)]
    assert len(shown) == 1 and f"mr_{api_key.prefix}_" in shown[0]
    secret = shown[0].rsplit(" ", 1)[1]
    assert secret not in response.content.decode().replace(shown[0], "")
    assert find_api_key(secret) == api_key
    assert (api_key.name, api_key.scopes) == ("ci", ["events", "send"])
    client.post(
        "/admin/api/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    api_key.refresh_from_db()
    assert api_key.is_active is False
    assert client_for(secret).get("/api/v1/events/").status_code == 401


def test_unknown_api_urls_answer_json_404(client) -> None:  # type: ignore[no-untyped-def]
    native = client.get("/api/v1/nope/")
    assert native.status_code == 404
    assert native.json() == {"error": {"code": "not_found", "message": "Not found."}}
    mailgun = client.post("/v3/example.test/nope")
    assert mailgun.status_code == 404
    assert mailgun.json() == {"message": "Not found."}
    assert client.get("/definitely-not-a-page/")["Content-Type"].startswith("text/html")
