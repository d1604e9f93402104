"""Reputation guardrails: warn at 5%/0.1%, pause at 10%/0.5%, operator resume."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from analytics.models import DomainReputation, Event
from analytics.services import guardrails, rollups
from analytics.services.events import EventInput, record_events
from mailcore.models import Mailbox, User

pytestmark = pytest.mark.django_db


def _outcomes(org: int, delivered: int, bounced: int, complained: int = 0, ago: int = 9) -> None:
    at = timezone.now() - timedelta(minutes=ago)
    record_events(
        EventInput(organization_id=org, type=t, payload={"domain": "example.test"}, occurred_at=at)
        for t, n in (("delivered", delivered), ("bounced", bounced), ("complained", complained))
        for _ in range(n)
    )
    rollups.fill_rollup("minute", now=at + timedelta(seconds=70))


def test_warns_then_pauses_then_operator_resumes(alice: Mailbox) -> None:
    org = alice.organization_id
    _outcomes(org, 190, 10)  # 5% bounces
    assert guardrails.check_guardrails() == {"example.test": "warning"}
    assert not guardrails.is_sending_paused("example.test")
    assert Event.objects.filter(type="reputation_warning").count() == 1
    assert guardrails.check_guardrails() == {}  # no repeated warning

    _outcomes(org, 0, 12, ago=7)  # 22 / 212 > 10%
    assert guardrails.check_guardrails() == {"example.test": "paused"}
    state = DomainReputation.objects.get()
    assert (state.status, state.sent_count, state.bounce_rate) == ("paused", 212, 0.10377)
    assert guardrails.is_sending_paused("EXAMPLE.test")
    assert guardrails.is_sending_paused("other.test") is False
    paused_event = Event.objects.get(type="reputation_paused")
    assert paused_event.payload["domain"] == "example.test"

    staff = User.objects.create_user("ops", password="x", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.post(f"/analytics/domains/{state.domain_id}/resume").status_code == 404
    assert guardrails.is_sending_paused("example.test")

    operator = User.objects.create_superuser("root", password="x")
    client.force_login(operator)
    response = client.post(f"/analytics/domains/{state.domain_id}/resume")
    assert response.status_code == 302
    assert not guardrails.is_sending_paused("example.test")
    state.refresh_from_db()
    assert (state.status, state.resumed_by) == ("ok", "root")
    # Outcomes before the resume no longer count.
    assert guardrails.check_guardrails() == {}
    assert not guardrails.is_sending_paused("example.test")


def test_complaints_pause_and_small_volume_is_ignored(alice: Mailbox) -> None:
    _outcomes(alice.organization_id, 50, 40)
    assert guardrails.check_guardrails() == {}  # under 100 outcomes
    _outcomes(alice.organization_id, 400, 0, complained=3, ago=7)  # 3/450 = 0.67% complaints
    assert guardrails.check_guardrails() == {"example.test": "paused"}
