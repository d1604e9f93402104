"""The operator's admin: domains, mailboxes and aliases editable; messages read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from mailcore.models import Alias, Domain, Mailbox, Message
from mailcore.services.provisioning import create_alias
from tests.factories import deliver, make_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client, alice: Mailbox) -> Client:
    alice.user.is_staff = alice.user.is_superuser = True
    alice.user.save()
    client.force_login(alice.user)
    return client


def test_lists_and_edits_domains_mailboxes_and_aliases(operator: Client, alice: Mailbox) -> None:
    alias = create_alias("sales@example.test", ["alice@example.test"])
    domain = Domain.objects.get(name="example.test")
    for url in [
        "/admin/mailcore/domain/",
        f"/admin/mailcore/domain/{domain.id}/change/",
        "/admin/mailcore/mailbox/",
        f"/admin/mailcore/mailbox/{alice.id}/change/",
        "/admin/mailcore/alias/",
        f"/admin/mailcore/alias/{alias.id}/change/",
    ]:
        response = operator.get(url)
        assert response.status_code == 200, url
    assert b"alice@example.test" in operator.get("/admin/mailcore/mailbox/").content
    response = operator.post(
        f"/admin/mailcore/domain/{domain.id}/change/",
        {
            "organization": domain.organization_id,
            "name": "example.test",
            "is_active": "",
            # The tracking-settings inline (analytics), left empty.
            "tracking-TOTAL_FORMS": "0",
            "tracking-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert Domain.objects.get(id=domain.id).is_active is False
    assert Alias.objects.count() == 1


def test_messages_are_shown_read_only(operator: Client, alice: Mailbox) -> None:
    outcome = deliver(make_email(subject="Audit me"), "alice@example.test")
    message_id = outcome.message_ids[0]
    assert b"Audit me" in operator.get("/admin/mailcore/message/").content
    page = operator.get(f"/admin/mailcore/message/{message_id}/change/")
    assert page.status_code == 200
    assert b'name="subject"' not in page.content  # no editable field
    assert operator.get("/admin/mailcore/message/add/").status_code == 403
    operator.post(f"/admin/mailcore/message/{message_id}/change/", {"subject": "changed"})
    assert Message.objects.get(id=message_id).subject == "Audit me"


def test_non_staff_are_sent_to_the_login_page(client: Client, bob: Mailbox) -> None:
    client.force_login(bob.user)
    response = client.get("/admin/mailcore/message/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
