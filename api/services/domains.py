"""Domains as the API shows them: DNS records to publish and what DNS holds."""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from typing import Any

from django.conf import settings

from analytics.services.domain_tracking import tracking_of
from analytics.services.guardrails import is_sending_paused
from api.models import DomainDnsCheck
from mailcore.models import DkimKey, Domain
from mailcore.services.outbound import dkim


def dns_records(domain: Domain) -> list[dict[str, Any]]:
    """The records an operator publishes: MX, SPF, DMARC and one DKIM TXT per key (active
    first; retired keys stay listed while mail signed with them may be in flight)."""
    keys = list(DkimKey.objects.filter(domain=domain).order_by("-is_active", "-created_at"))
    for key in keys:
        key.domain = domain
    host = settings.MAILROOM_HOSTNAME
    spf = " ".join(["v=spf1", *settings.MAILROOM_SPF_MECHANISMS, "~all"])
    records: list[dict[str, Any]] = [
        {"type": "MX", "name": domain.name, "value": f"10 {host}.", "purpose": "receiving"},
        {"type": "TXT", "name": domain.name, "value": spf, "purpose": "spf"},
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
    return records


def checked_records(domain: Domain) -> tuple[list[dict[str, Any]], DomainDnsCheck | None]:
    """:func:`dns_records`, each with the ``status``, ``found`` and ``detail`` of the last DNS
    check (``unchecked`` for a record that was not checked, e.g. a key created since)."""
    check = DomainDnsCheck.objects.filter(domain=domain).first()
    results = {(r["purpose"], r["name"], r["value"]): r for r in (check.results if check else [])}
    records = []
    for record in dns_records(domain):
        result = results.get((record["purpose"], record["name"], record["value"]), {})
        records.append(
            {
                **record,
                "status": result.get("status", "unchecked"),
                "found": result.get("found", []),
                "detail": result.get("detail", ""),
            }
        )
    return records, check


def is_verified(domain: Domain, records: list[dict[str, Any]]) -> bool:
    """SPF and the active DKIM key were found valid by the last check."""
    statuses = {r["purpose"]: r["status"] for r in records}
    return domain.is_active and all(statuses.get(p) == "valid" for p in ("spf", "dkim"))


def describe_domain(domain: Domain) -> dict[str, Any]:
    """The domain with its records and what the last DNS check found. ``state``:
    ``verified`` (SPF and DKIM found valid), ``ready`` (it can sign, DNS not verified),
    ``unverified`` (no active signing key, or the domain is disabled)."""
    records, check = checked_records(domain)
    active_dkim = [r for r in records if r["purpose"] == "dkim"]
    has_active = bool(active_dkim) and domain.is_active
    verified = is_verified(domain, records)
    return {
        "name": domain.name,
        "is_active": domain.is_active,
        "state": "verified" if verified else "ready" if has_active else "unverified",
        # The reputation guardrail paused sending: mail is accepted and waits for an operator.
        "sending_paused": is_sending_paused(domain.name),
        # What applies to messages that do not choose (their own setting wins).
        "tracking": tracking_of(domain).as_dict(),
        "dkim_selector": active_dkim[0]["name"].split(".", 1)[0] if active_dkim else "",
        "dns_records": records,
        "dns_checked_at": check.checked_at.isoformat() if check else None,
        "created_at": domain.created_at.isoformat(),
    }


# Mailgun has three verdicts; a missing record is as wrong as a wrong one.
_MAILGUN_VALID = {"valid": "valid", "invalid": "invalid", "missing": "invalid"}


def mailgun_domain(domain: Domain) -> dict[str, Any]:
    """``GET /v3/domains/{name}``'s body: ``domain``, ``sending_dns_records`` (SPF, DKIM,
    DMARC) and ``receiving_dns_records`` (MX) with ``valid`` and ``cached`` (what was found)."""
    records, _ = checked_records(domain)

    def shape(record: dict[str, Any]) -> dict[str, Any]:
        out = {
            "record_type": record["type"],
            "name": record["name"],
            "value": record["value"],
            "valid": _MAILGUN_VALID.get(record["status"], "unknown"),
            "cached": record["found"],
        }
        if record["type"] == "MX":
            priority, _, host = record["value"].partition(" ")
            out.update(priority=priority, value=host.rstrip("."))
        return out

    return {
        "domain": {
            "id": str(domain.id),
            "name": domain.name,
            "state": "active" if is_verified(domain, records) else "unverified",
            "is_disabled": not domain.is_active,
            "type": "custom",
            "created_at": format_datetime(domain.created_at.astimezone(UTC), usegmt=True),
            "smtp_login": "",
            "spam_action": "disabled",
            "wildcard": False,
            "require_tls": False,
            "skip_verification": False,
        },
        "receiving_dns_records": [shape(r) for r in records if r["purpose"] == "receiving"],
        "sending_dns_records": [
            shape(r) for r in records if r["purpose"] in ("spf", "dkim", "dmarc")
        ],
    }
