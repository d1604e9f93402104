"""Sign-in with throttling, sign-out, and the settings page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from mailcore.models import Label, Mailbox
from mailcore.services.provisioning import create_alias, create_mailbox
from tests.factories import PASSWORD
from webmail.forms import THROTTLED
from webmail.models import Identity, Preferences, TrustedSender

pytestmark = pytest.mark.django_db


def sign_in(client: Client, username: str, password: str, ip: str = "10.0.0.1"):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("webmail:login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_sign_in_and_out(alice: Mailbox) -> None:
    client = Client()
    response = sign_in(client, "Alice@Example.test ", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert is_signed_in(client)
    response = client.post(reverse("webmail:logout"))
    assert response.status_code == 302
    assert not is_signed_in(client)


def test_five_failures_lock_the_username(alice: Mailbox) -> None:
    client = Client()
    for attempt in range(5):
        response = sign_in(client, "alice@example.test", "wrong", ip=f"10.0.0.{attempt}")
        assert response.status_code == 200
        assert THROTTLED not in response.content.decode()
    # From yet another address and with the right password: still refused, and nothing else
    # about the account is revealed.
    response = sign_in(client, "alice@example.test", PASSWORD, ip="10.9.9.9")
    assert response.status_code == 200
    assert THROTTLED in response.content.decode()
    assert not is_signed_in(client)
    # Other users are not affected.
    create_mailbox("dave@example.test", PASSWORD)
    assert sign_in(client, "dave@example.test", PASSWORD, ip="10.9.9.9").status_code == 302


def test_twenty_failures_lock_the_address(alice: Mailbox) -> None:
    client = Client()
    for attempt in range(20):
        sign_in(client, f"guess{attempt}@example.test", "wrong", ip="10.1.1.1")
    response = sign_in(client, "alice@example.test", PASSWORD, ip="10.1.1.1")
    assert THROTTLED in response.content.decode()
    assert not is_signed_in(client)
    assert sign_in(client, "alice@example.test", PASSWORD, ip="10.1.1.2").status_code == 302


def test_success_forgets_the_username_failures(alice: Mailbox) -> None:
    client = Client()
    for _ in range(4):
        sign_in(client, "alice@example.test", "wrong")
    assert sign_in(client, "alice@example.test", PASSWORD).status_code == 302
    client.post(reverse("webmail:logout"))
    for _ in range(4):
        sign_in(client, "alice@example.test", "wrong")
    assert sign_in(client, "alice@example.test", PASSWORD).status_code == 302


def test_preferences_are_saved(alice_client: Client, alice: Mailbox) -> None:
    response = alice_client.post(
        reverse("webmail:settings"),
        {
            "section": "preferences",
            "display_name": "Alice E.",
            "signature": "-- \r\nAlice",
            "remote_images": "always",
            "page_size": "100",
            "undo_send_seconds": "5",
        },
    )
    assert response.status_code == 302
    preferences = Preferences.objects.get(user=alice.user)
    assert (
        preferences.signature,
        preferences.remote_images,
        preferences.page_size,
        preferences.undo_send_seconds,
    ) == ("-- \nAlice", "always", 100, 5)
    alice.refresh_from_db()
    assert alice.display_name == "Alice E."
    response = alice_client.post(
        reverse("webmail:settings"),
        {
            "section": "preferences",
            "remote_images": "always",
            "page_size": "7",
            "undo_send_seconds": "5",
        },
    )
    assert response.status_code == 400
    assert Preferences.objects.get(user=alice.user).page_size == 100


def test_identities_only_for_own_aliases(
    alice_client: Client, alice: Mailbox, bob: Mailbox
) -> None:
    create_alias("team@example.test", ["alice@example.test"])
    create_alias("bobs@example.test", ["bob@example.test"])
    page = alice_client.get(reverse("webmail:settings")).content.decode()
    assert '<option value="team@example.test">' in page
    assert "bobs@example.test" not in page
    response = alice_client.post(
        reverse("webmail:settings"), {"section": "identity_add", "address": "bobs@example.test"}
    )
    assert response.status_code == 400
    assert Identity.objects.count() == 0
    alice_client.post(
        reverse("webmail:settings"),
        {"section": "identity_add", "address": "team@example.test", "name": "Team"},
    )
    identity = Identity.objects.get()
    assert (identity.address, identity.name, identity.mailbox_id) == (
        "team@example.test",
        "Team",
        alice.id,
    )
    alice_client.post(
        reverse("webmail:settings"), {"section": "identity_remove", "identity": identity.id}
    )
    assert Identity.objects.count() == 0


def test_password_change_keeps_the_session(alice_client: Client, alice: Mailbox) -> None:
    response = alice_client.post(
        reverse("webmail:settings"),
        {
            "section": "password",
            "old_password": PASSWORD,
            "new_password1": "a much better passphrase 42",
            "new_password2": "a much better passphrase 42",
        },
    )
    assert response.status_code == 302
    alice.user.refresh_from_db()
    assert alice.user.check_password("a much better passphrase 42")
    assert alice_client.get(reverse("webmail:settings")).status_code == 200
    response = alice_client.post(
        reverse("webmail:settings"),
        {"section": "password", "old_password": "nope", "new_password1": "x", "new_password2": "x"},
    )
    assert response.status_code == 400
    alice.user.refresh_from_db()
    assert alice.user.check_password("a much better passphrase 42")


def test_labels_and_trusted_senders_on_settings(alice_client: Client, alice: Mailbox) -> None:
    response = alice_client.post(
        reverse("webmail:label_create"), {"name": "Travel", "color": "#AA3300"}
    )
    assert response.status_code == 302
    label = Label.objects.get(mailbox=alice)
    assert (label.name, label.color) == ("Travel", "#aa3300")
    response = alice_client.post(
        reverse("webmail:label_create"),
        {"name": "Bad", "color": "red;background:url(x)"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert Label.objects.count() == 1
    TrustedSender.objects.create(user=alice.user, address="news@remote.test")
    assert "news@remote.test" in alice_client.get(reverse("webmail:settings")).content.decode()
    alice_client.post(
        reverse("webmail:settings"), {"section": "trusted_remove", "address": "news@remote.test"}
    )
    assert TrustedSender.objects.count() == 0
