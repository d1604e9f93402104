"""The outbound admin: queue views and actions, suppressions with CSV, DKIM keys."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from mailcore.models import Delivery, DkimKey, Mailbox, Suppression, User
from mailcore.services.outbound import submit_outbound
from tests.factories import make_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    user = User.objects.create_superuser("admin", "admin@example.test", "pw")
    client.force_login(user)
    return client


def queued(alice: Mailbox) -> list[Delivery]:
    message = submit_outbound(
        organization_id=alice.organization_id,
        mail_from="alice@example.test",
        recipients=["dana@remote.test", "erin@other.test"],
        raw=make_email(sender="alice@example.test"),
        source="api",
    )
    return list(message.deliveries.order_by("id"))


def test_queue_pages_and_attempt_log_render(staff: Client, alice: Mailbox) -> None:
    dana, erin = queued(alice)
    response = staff.get(reverse("admin:mailcore_delivery_queue"))
    assert response.status_code == 200
    assert sorted((d, dict(c)) for d, c in response.context["rows"]) == [
        ("other.test", {"queued": 1, "sending": 0, "deferred": 0}),
        ("remote.test", {"queued": 1, "sending": 0, "deferred": 0}),
    ]
    for url in (
        reverse("admin:mailcore_delivery_changelist"),
        reverse("admin:mailcore_delivery_change", args=[dana.id]),
        reverse("admin:mailcore_outboundmessage_changelist"),
        reverse("admin:mailcore_outboundmessage_change", args=[dana.message_id]),
        reverse("admin:mailcore_suppression_changelist"),
        reverse("admin:mailcore_dkimkey_changelist"),
    ):
        assert staff.get(url).status_code == 200, url


def test_cancel_and_retry_actions(staff: Client, alice: Mailbox) -> None:
    dana, erin = queued(alice)
    url = reverse("admin:mailcore_delivery_changelist")
    response = staff.post(url, {"action": "cancel_selected", "_selected_action": [dana.id]})
    assert response.status_code == 302
    assert dict(Delivery.objects.values_list("recipient", "status")) == {
        "dana@remote.test": "cancelled",
        "erin@other.test": "queued",
    }
    Delivery.objects.filter(id=erin.id).update(status="failed")
    staff.post(
        reverse("admin:mailcore_outboundmessage_changelist"),
        {"action": "retry_selected", "_selected_action": [dana.message_id]},
    )
    assert dict(Delivery.objects.values_list("recipient", "status")) == {
        "dana@remote.test": "cancelled",
        "erin@other.test": "deferred",
    }


def test_suppressions_add_import_export(staff: Client, alice: Mailbox) -> None:
    add = reverse("admin:mailcore_suppression_add")
    response = staff.post(
        add,
        {
            "domain": alice.domain_id,
            "address": " Gone@Remote.test ",
            "reason": "manual",
            "detail": "",
        },
    )
    assert response.status_code == 302
    upload = SimpleUploadedFile("s.csv", b"address,reason\nx@remote.test,complaint\n")
    response = staff.post(
        reverse("admin:mailcore_suppression_import"), {"domain": alice.domain_id, "file": upload}
    )
    assert response.status_code == 302
    assert set(Suppression.objects.values_list("address", "reason", "source")) == {
        ("gone@remote.test", "manual", "admin"),
        ("x@remote.test", "complaint", "import"),
    }
    exported = staff.get(reverse("admin:mailcore_suppression_export")).content.decode()
    assert exported.splitlines()[1].startswith("example.test,gone@remote.test,manual,admin,")
    removal = Suppression.objects.get(address="x@remote.test")
    staff.post(reverse("admin:mailcore_suppression_delete", args=[removal.id]), {"post": "yes"})
    assert list(Suppression.objects.values_list("address", flat=True)) == ["gone@remote.test"]


def test_dkim_key_generation_and_rotation(staff: Client, alice: Mailbox) -> None:
    add = reverse("admin:mailcore_dkimkey_add")
    staff.post(add, {"domain": alice.domain_id, "selector": "s1"})
    staff.post(add, {"domain": alice.domain_id, "selector": "s2"})
    keys = list(DkimKey.objects.order_by("id").values_list("selector", "is_active"))
    assert keys == [("s1", False), ("s2", True)]
    key = DkimKey.objects.get(selector="s2")
    page = staff.get(reverse("admin:mailcore_dkimkey_change", args=[key.id])).content.decode()
    assert "s2._domainkey.example.test" in page and "v=DKIM1; k=rsa; p=" in page
    assert key.private_key_pem not in page
