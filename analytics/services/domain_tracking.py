"""Per-domain tracking settings: the open, click and unsubscribe tracking a sending domain
applies to messages that do not say otherwise.

The message's own choice (``OutboundMessage.track_opens``/``track_clicks``, from the API's
``track_opens`` or Mailgun's ``o:tracking*``) wins both ways; ``None`` there means "the
domain's setting". The outbound dispatcher resolves the effective values in SQL when it loads
the claimed messages (``mailcore/services/outbound/dispatch.py``), so sending pays no extra
query. Unsubscribe tracking (RFC 8058 ``List-Unsubscribe`` headers) is a domain setting only.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction

from analytics.models import DomainTracking
from mailcore.models import Domain

# Names as Mailgun's API uses them, and the model field each one sets.
KINDS = {"open": "track_opens", "click": "track_clicks", "unsubscribe": "track_unsubscribes"}


@dataclass(frozen=True, slots=True)
class TrackingSettings:
    open: bool = False
    click: bool = False
    unsubscribe: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {"open": self.open, "click": self.click, "unsubscribe": self.unsubscribe}


def _from_row(row: DomainTracking | None) -> TrackingSettings:
    if row is None:
        return TrackingSettings()
    return TrackingSettings(row.track_opens, row.track_clicks, row.track_unsubscribes)


def tracking_of(domain: Domain) -> TrackingSettings:
    """The domain's settings; reads ``domain.tracking`` (load lists with
    ``select_related("tracking")`` to avoid a query per domain)."""
    try:
        row = domain.tracking
    except ObjectDoesNotExist:
        row = None
    return _from_row(row)


def set_domain_tracking(domain: Domain, changes: dict[str, bool]) -> TrackingSettings:
    """Change some of ``open``/``click``/``unsubscribe`` (keys of :data:`KINDS`) for ``domain``;
    returns the settings now in force. The caller has checked that the domain is the tenant's.
    Owns its transaction.
    """
    unknown = set(changes) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown tracking kind {sorted(unknown)[0]!r}")
    with transaction.atomic():
        row, _ = DomainTracking.objects.select_for_update().get_or_create(domain=domain)
        fields = {KINDS[kind]: bool(value) for kind, value in changes.items()}
        for name, value in fields.items():
            setattr(row, name, value)
        row.save(update_fields=[*fields, "updated_at"])
    domain.tracking = row
    return _from_row(row)
