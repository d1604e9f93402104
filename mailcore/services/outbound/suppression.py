"""Suppression lists: per sending domain, the addresses never sent to again.

Permanent address failures (a 5xx naming the recipient, a hard DSN) and complaints add an
address; operators (admin, CSV import) and the API add and remove them. Submission marks a
suppressed recipient ``suppressed`` without sending; the claim step checks again, so an address
suppressed while its mail waited in the queue is not sent to either.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from mailcore.models import Domain, Suppression
from mailcore.services.recipients import normalize_address

# Sisimai reasons that say the address itself is bad (not the content, the sender, the IP).
ADDRESS_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "suspend", "notaccept"})
CSV_FIELDS = ["address", "reason", "source", "detail", "created_at"]


@dataclass(frozen=True, slots=True)
class NewSuppression:
    organization_id: int
    domain_id: int
    address: str
    reason: str
    source: str
    detail: str = ""
    delivery_id: int | None = None


def is_address_failure(reason: str, status: str | None) -> bool:
    """Whether a permanent failure condemns the address (so it is suppressed)."""
    return reason in ADDRESS_REASONS or bool(status and status.startswith("5.1."))


def suppressed_among(domain_id: int, addresses: Iterable[str]) -> set[str]:
    return set(
        Suppression.objects.filter(domain_id=domain_id, address__in=set(addresses)).values_list(
            "address", flat=True
        )
    )


def add_suppressions(items: Sequence[NewSuppression]) -> int:
    """Insert what is not there yet (the first reason wins); returns how many were new.

    Runs in the caller's transaction when there is one.
    """
    rows = [
        Suppression(
            organization_id=item.organization_id,
            domain_id=item.domain_id,
            address=normalize_address(item.address),
            reason=item.reason,
            source=item.source,
            detail=item.detail[:2000],
            delivery_id=item.delivery_id,
        )
        for item in items
        if "@" in item.address
    ]
    if not rows:
        return 0
    before = Suppression.objects.filter(
        domain_id__in={row.domain_id for row in rows}, address__in={row.address for row in rows}
    ).count()
    Suppression.objects.bulk_create(rows, ignore_conflicts=True)
    after = Suppression.objects.filter(
        domain_id__in={row.domain_id for row in rows}, address__in={row.address for row in rows}
    ).count()
    return after - before


def suppress_address(
    domain: Domain, address: str, *, reason: str = Suppression.Reason.MANUAL, source: str = "api"
) -> bool:
    """Add one address by hand; False if it was already suppressed."""
    item = NewSuppression(domain.organization_id, domain.id, address, reason, source)
    with transaction.atomic():
        return add_suppressions([item]) == 1


def remove_suppression(domain: Domain, address: str) -> bool:
    """Allow sending to ``address`` again; False if it was not suppressed."""
    deleted, _ = Suppression.objects.filter(
        domain=domain, address=normalize_address(address)
    ).delete()
    return deleted > 0


def export_suppressions_csv(
    domain: Domain | None = None, queryset: QuerySet[Suppression] | None = None
) -> str:
    """CSV with a header row: address, reason, source, detail, created_at (+ domain if mixed)."""
    rows = queryset if queryset is not None else Suppression.objects.filter(domain=domain)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["domain", *CSV_FIELDS])
    for item in rows.select_related("domain").order_by("domain__name", "address"):
        writer.writerow(
            [
                item.domain.name,
                item.address,
                item.reason,
                item.source,
                item.detail,
                item.created_at.isoformat(),
            ]
        )
    return out.getvalue()


def import_suppressions_csv(domain: Domain, text: str) -> int:
    """Add the addresses of a CSV (a header row with ``address`` and optionally ``reason``, or
    one address per line); returns how many were new. Unknown reasons become ``manual``."""
    reader = csv.reader(io.StringIO(text))
    rows = [row for row in reader if row and row[0].strip()]
    if not rows:
        return 0
    header = [cell.strip().lower() for cell in rows[0]]
    if "address" in header:
        address_at = header.index("address")
        reason_at = header.index("reason") if "reason" in header else None
        rows = rows[1:]
    else:
        address_at, reason_at = 0, None
    valid = set(Suppression.Reason.values)
    items = []
    for row in rows:
        if len(row) <= address_at:
            continue
        reason = row[reason_at].strip() if reason_at is not None and len(row) > reason_at else ""
        items.append(
            NewSuppression(
                domain.organization_id,
                domain.id,
                row[address_at].strip(),
                reason if reason in valid else Suppression.Reason.MANUAL,
                "import",
            )
        )
    with transaction.atomic():
        return add_suppressions(items)
