"""Checking a domain's published DNS records with dnspython.

Each record the operator should publish (:func:`api.services.domains.dns_records`) is looked
up and gets a status:

- ``valid``: found and right;
- ``invalid``: found, but wrong (``detail`` says how; ``found`` lists what was there);
- ``missing``: the name has no record of that type (NXDOMAIN or no answer);
- ``unknown``: DNS did not answer in time or failed (timeout, SERVFAIL); never an error.

What "right" means: MX — one of the exchanges is ``MAILROOM_HOSTNAME``; SPF — exactly one
``v=spf1`` TXT and it contains every mechanism of ``MAILROOM_SPF_MECHANISMS``; DKIM — the TXT
at ``selector._domainkey`` has the active key's ``p=``; DMARC — a ``v=DMARC1`` TXT. Retired
DKIM keys are shown but not checked. The resolver is the system's, or
``MAILROOM_DNS_NAMESERVERS`` (``ip[:port]``, comma separated); each lookup gives up after
``MAILROOM_DNS_TIMEOUT`` seconds, and answers are not cached (a check sees DNS as it is now).
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.nameserver
import dns.resolver
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import DomainDnsCheck
from api.services.domains import dns_records, is_verified
from mailcore.models import Domain

VALID, INVALID, MISSING, UNKNOWN = "valid", "invalid", "missing", "unknown"


def parse_nameserver(value: str) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``::1``, ``[::1]:5353`` -> (address, port)."""
    value = value.strip()
    if value.startswith("["):
        address, _, rest = value[1:].partition("]")
        return address, int(rest.lstrip(":") or 53)
    if value.count(":") == 1:
        address, _, port = value.partition(":")
        return address, int(port)
    return value, 53


def make_resolver() -> dns.resolver.Resolver:
    servers = [s for s in settings.MAILROOM_DNS_NAMESERVERS if s.strip()]
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*parse_nameserver(server)) for server in servers
        ]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = resolver.lifetime = settings.MAILROOM_DNS_TIMEOUT
    resolver.cache = None
    return resolver


def _lookup(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list[Any] | None:
    """The records, ``[]`` when there are none, ``None`` when DNS did not give an answer."""
    try:
        return list(resolver.resolve(name, rdtype, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException:
        return None


def _txt(rdata: Any) -> str:
    return b"".join(rdata.strings).decode("utf-8", "replace")


def _dkim_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def _spf_terms(text: str) -> set[str]:
    return {term.lower().lstrip("+") for term in text.split()[1:]}


def check_record(resolver: dns.resolver.Resolver, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with ``status``, ``found`` (what DNS holds) and ``detail`` added."""
    purpose, name = record["purpose"], record["name"]
    rdtype = "MX" if purpose == "receiving" else "TXT"
    answer = _lookup(resolver, name, rdtype)
    result = {**record, "found": [], "detail": ""}
    if answer is None:
        return {**result, "status": UNKNOWN, "detail": "DNS did not answer in time."}
    if rdtype == "MX":
        found = [f"{r.preference} {r.exchange.to_text()}" for r in answer]
        exchanges = {r.exchange.to_text().rstrip(".").lower() for r in answer}
        host = settings.MAILROOM_HOSTNAME.rstrip(".").lower()
        ok, wrong = host in exchanges, f"No MX record points at {host}."
    else:
        texts = [_txt(r) for r in answer]
        if purpose == "spf":
            found = [t for t in texts if t.lower().startswith("v=spf1")]
            wanted = [m.lower() for m in settings.MAILROOM_SPF_MECHANISMS]
            absent = [m for m in wanted if not found or m not in _spf_terms(found[0])]
            ok = len(found) == 1 and not absent
            wrong = (
                "More than one SPF record (a permanent error for receivers)."
                if len(found) > 1
                else f"The SPF record does not include {', '.join(absent)}."
            )
        elif purpose == "dkim":
            found = texts
            expected = _dkim_tags(record["value"])["p"]
            ok = any(_dkim_tags(t).get("p") == expected for t in texts)
            wrong = "The DKIM record does not hold the active key (p= differs)."
        else:  # dmarc
            found = [t for t in texts if t.replace(" ", "").lower().startswith("v=dmarc1")]
            ok, wrong = len(found) == 1, "No single v=DMARC1 record."
    if not found:
        return {**result, "status": MISSING, "detail": f"No {rdtype} record found."}
    return {
        **result,
        "found": found,
        "status": VALID if ok else INVALID,
        "detail": "" if ok else wrong,
    }


def verify_domain_dns(domain: Domain) -> DomainDnsCheck:
    """Look every record of ``domain`` up now and store the results (the previous check is
    replaced). Takes up to ``MAILROOM_DNS_TIMEOUT`` per record; hold no transaction."""
    resolver = make_resolver()
    results = [
        check_record(resolver, record)
        for record in dns_records(domain)
        if record["purpose"] in ("receiving", "spf", "dmarc", "dkim")
    ]
    with transaction.atomic():
        check, _ = DomainDnsCheck.objects.update_or_create(
            domain=domain,
            defaults={
                "organization_id": domain.organization_id,
                "results": results,
                "is_verified": is_verified(domain, results),
                "checked_at": timezone.now(),
            },
        )
    return check


def verify_all_domains() -> int:
    """Beat: check every active domain; returns how many."""
    domains = list(Domain.objects.filter(is_active=True).order_by("id"))
    for domain in domains:
        verify_domain_dns(domain)
    return len(domains)
