"""Reputation guardrails: rolling bounce and complaint rates per sending domain.

Rates come from the minute rollups (``tag = ''`` rows) over the last
MAILROOM_GUARDRAIL_WINDOW_HOURS (or since the operator's last resume, if later), once a domain
has MAILROOM_GUARDRAIL_MIN_VOLUME delivery outcomes in that window:

- bounce rate = bounced / (delivered + bounced); complaint rate = complained / delivered;
- at the warning thresholds (SES: 5% / 0.1%) the domain turns ``warning`` and a
  ``reputation_warning`` event is recorded (the dashboard shows it, webhooks see the event);
- at the pause thresholds (10% / 0.5%) it turns ``paused``, a ``reputation_paused`` event is
  recorded and :func:`is_sending_paused` answers True until an operator resumes it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import DomainReputation
from analytics.services.events import EventInput, record_events

PAUSED_CACHE_SECONDS = 30


def _paused_key(domain_name: str) -> str:
    return f"guardrail:paused:{domain_name.lower()}"


def is_sending_paused(domain_name: str) -> bool:
    """Whether outbound delivery from this sending domain must wait (cached 30 s)."""
    key = _paused_key(domain_name)
    cached = cache.get(key)
    if cached is None:
        cached = DomainReputation.objects.filter(
            domain_name=domain_name.lower(), status=DomainReputation.Status.PAUSED
        ).exists()
        cache.set(key, cached, PAUSED_CACHE_SECONDS)
    return bool(cached)


@dataclass(frozen=True, slots=True)
class Rates:
    delivered: int
    bounced: int
    complained: int

    @property
    def attempted(self) -> int:
        return self.delivered + self.bounced

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.attempted if self.attempted else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.delivered if self.delivered else 0.0


def domain_rates(since: datetime) -> dict[str, Rates]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT domain, type, sum(count) FROM analytics_eventrollup"
            " WHERE resolution = 'minute' AND tag = '' AND bucket >= %s AND domain <> ''"
            " AND type IN ('delivered', 'bounced', 'complained') GROUP BY 1, 2",
            [since],
        )
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for domain, event_type, count in cursor.fetchall():
            counts[domain][event_type] = int(count)
    return {
        domain: Rates(c.get("delivered", 0), c.get("bounced", 0), c.get("complained", 0))
        for domain, c in counts.items()
    }


def level_of(rates: Rates) -> str:
    if rates.attempted < settings.MAILROOM_GUARDRAIL_MIN_VOLUME:
        return DomainReputation.Status.OK
    if (
        rates.bounce_rate >= settings.MAILROOM_GUARDRAIL_BOUNCE_PAUSE
        or rates.complaint_rate >= settings.MAILROOM_GUARDRAIL_COMPLAINT_PAUSE
    ):
        return DomainReputation.Status.PAUSED
    if (
        rates.bounce_rate >= settings.MAILROOM_GUARDRAIL_BOUNCE_WARN
        or rates.complaint_rate >= settings.MAILROOM_GUARDRAIL_COMPLAINT_WARN
    ):
        return DomainReputation.Status.WARNING
    return DomainReputation.Status.OK


def check_guardrails(*, now: datetime | None = None) -> dict[str, str]:
    """Recompute every active sending domain's rates and state; returns changed states."""
    from mailcore.models import Domain

    now = now or timezone.now()
    window_start = now - timedelta(hours=settings.MAILROOM_GUARDRAIL_WINDOW_HOURS)
    all_rates = domain_rates(window_start)
    domains = {d.name: d for d in Domain.objects.filter(name__in=list(all_rates))}
    changed: dict[str, str] = {}
    for name, domain in domains.items():
        with transaction.atomic():
            state, _ = DomainReputation.objects.select_for_update().get_or_create(
                domain_id=domain.id,
                defaults={"domain_name": name, "organization_id": domain.organization_id},
            )
            rates = all_rates[name]
            if state.resumed_at and state.resumed_at > window_start:
                rates = domain_rates(state.resumed_at).get(name, Rates(0, 0, 0))
            new = level_of(rates)
            state.sent_count = rates.attempted
            state.bounce_rate = round(rates.bounce_rate, 5)
            state.complaint_rate = round(rates.complaint_rate, 5)
            state.updated_at = now
            escalates = _rank(new) > _rank(state.status)
            if escalates:
                _transition(state, new, now, rates)
                changed[name] = new
            elif state.status == DomainReputation.Status.WARNING and new == "ok":
                state.status = DomainReputation.Status.OK  # warnings clear themselves
                changed[name] = new
            state.save()
        if changed.get(name) == DomainReputation.Status.PAUSED:
            cache.delete(_paused_key(name))
    return changed


def _rank(status: str) -> int:
    return ["ok", "warning", "paused"].index(status)


def _transition(state: DomainReputation, new: str, now: datetime, rates: Rates) -> None:
    state.status = new
    if new == DomainReputation.Status.PAUSED:
        state.paused_at = now
    else:
        state.warned_at = now
    record_events(
        [
            EventInput(
                organization_id=state.organization_id,
                type="reputation_paused" if new == "paused" else "reputation_warning",
                payload={
                    "domain": state.domain_name,
                    "bounce_rate": round(rates.bounce_rate, 5),
                    "complaint_rate": round(rates.complaint_rate, 5),
                    "outcomes": rates.attempted,
                },
                occurred_at=now,
            )
        ]
    )


def resume_sending(domain_id: int, *, operator: str) -> bool:
    """An operator resumes a paused domain; rates restart from now. False if it was not paused."""
    now = timezone.now()
    with transaction.atomic():
        state = DomainReputation.objects.select_for_update().filter(domain_id=domain_id).first()
        if state is None or state.status != DomainReputation.Status.PAUSED:
            return False
        state.status = DomainReputation.Status.OK
        state.resumed_at = now
        state.resumed_by = operator[:254]
        state.updated_at = now
        state.save(update_fields=["status", "resumed_at", "resumed_by", "updated_at"])
        record_events(
            [
                EventInput(
                    organization_id=state.organization_id,
                    type="reputation_resumed",
                    payload={"domain": state.domain_name, "operator": operator},
                    occurred_at=now,
                )
            ]
        )
    cache.delete(_paused_key(state.domain_name))
    return True
