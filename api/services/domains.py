"""Domains as the API shows them: DNS records to publish and their state."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from analytics.services.domain_tracking import tracking_of
from analytics.services.guardrails import is_sending_paused
from mailcore.models import DkimKey, Domain
from mailcore.services.outbound import dkim


def describe_domain(domain: Domain) -> dict[str, Any]:
    """The records an operator publishes. ``state`` is ``ready`` when a signing key exists;
    Mailroom does not query public DNS from here (deployments may be offline)."""
    keys = list(DkimKey.objects.filter(domain=domain).order_by("-is_active", "-created_at"))
    for key in keys:
        key.domain = domain
    host = settings.MAILROOM_HOSTNAME
    records: list[dict[str, Any]] = [
        {"type": "MX", "name": domain.name, "value": f"10 {host}.", "purpose": "receiving"},
        {"type": "TXT", "name": domain.name, "value": f"v=spf1 a:{host} ~all", "purpose": "spf"},
        {
            "type": "TXT",
            "name": f"_dmarc.{domain.name}",
            "value": "v=DMARC1; p=none",
            "purpose": "dmarc",
        },
    ]
    records += [
        {
            "type": "TXT",
            "name": dkim.dns_record_name(key),
            "value": dkim.dns_record_value(key),
            "purpose": "dkim" if key.is_active else "dkim-retired",
        }
        for key in keys
    ]
    has_active = any(key.is_active for key in keys)
    return {
        "name": domain.name,
        "is_active": domain.is_active,
        "state": "ready" if has_active and domain.is_active else "unverified",
        # The reputation guardrail paused sending: mail is accepted and waits for an operator.
        "sending_paused": is_sending_paused(domain.name),
        # What applies to messages that do not choose (their own setting wins).
        "tracking": tracking_of(domain).as_dict(),
        "dkim_selector": next((key.selector for key in keys if key.is_active), ""),
        "dns_records": records,
        "created_at": domain.created_at.isoformat(),
    }
