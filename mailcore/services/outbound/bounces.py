"""Bounce and complaint intake: what comes back to ``bounces+TOKEN@`` (or the bare bounce
address) after a message left.

:func:`process_bounce` parses with the pure ``mailcore.bounces`` parser, finds the deliveries
(the VERP token, else the original Message-ID, then the failed recipients' addresses within
that message), and in one transaction records what it says:

- a permanent (or unclassified) failure: the delivery becomes ``bounced`` (even after
  ``delivered``: the next hop accepted, then failed), an attempt and a ``bounced`` event are
  recorded, and an address failure (user unknown, no such domain, ...) is suppressed;
- a temporary failure (a "delayed" DSN): a ``deferred`` event only -- the remote MTA retries;
- a complaint (ARF): ``complained_at``, a ``complained`` event and a suppression;
- auto-replies, delivery reports and anything else: nothing (auto-replies are not bounces).

Processing the same report twice changes nothing the second time. The SMTP receiver calls this
for mail to the bounce addresses; tests call it with files, without a socket.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from analytics.services.events import EventInput, record_events
from config.metrics import BOUNCES, COMPLAINTS
from mailcore.bounces import BounceRecipient, BounceReport, parse_bounce
from mailcore.models import Delivery, DeliveryAttempt, OutboundMessage, Suppression
from mailcore.services.outbound import verp
from mailcore.services.outbound.suppression import (
    NewSuppression,
    add_suppressions,
    is_address_failure,
)
from mailcore.services.recipients import normalize_address

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BounceOutcome:
    kind: str
    matched: list[int] = field(default_factory=list)  # delivery ids the report was applied to
    bounced: int = 0
    deferred: int = 0
    complained: int = 0
    suppressed: int = 0


def process_bounce(
    raw: bytes, verp_token: str | None = None, *, now: datetime | None = None
) -> BounceOutcome:
    """Apply a bounce/complaint to the deliveries it is about. Owns its transaction."""
    report = parse_bounce(raw)
    outcome = BounceOutcome(report.kind)
    if report.kind not in ("bounce", "complaint"):
        return outcome
    now = now or timezone.now()
    anchor, candidates = _candidates(report, verp_token)
    matches = _match(report, anchor, candidates)
    if not matches:
        return outcome
    with transaction.atomic():
        events: list[EventInput] = []
        suppressions: list[NewSuppression] = []
        for delivery, recipient in matches:
            if report.kind == "complaint":
                _complaint(delivery, recipient, now, outcome, events, suppressions)
            elif recipient is not None and recipient.permanent is False:
                outcome.deferred += 1
                events.append(_event(delivery, "deferred", recipient, now))
            else:
                _bounce(delivery, recipient, now, outcome, events, suppressions)
            outcome.matched.append(delivery.id)
        outcome.suppressed = add_suppressions(suppressions)
        record_events(events)
    if outcome.bounced:
        BOUNCES.labels("dsn").inc(outcome.bounced)
    if outcome.complained:
        COMPLAINTS.inc(outcome.complained)
    log.info(
        "%s report applied to deliveries %s",
        report.kind,
        outcome.matched,
        extra={
            "kind": report.kind,
            "delivery_ids": outcome.matched,
            "message_id": report.original_message_id or "",
            "bounced": outcome.bounced,
            "deferred": outcome.deferred,
            "complained": outcome.complained,
            "suppressed": outcome.suppressed,
        },
    )
    return outcome


def process_bounce_for_recipients(raw: bytes, addresses: Sequence[str]) -> list[BounceOutcome]:
    """What the SMTP receiver calls with the bounce addresses of one transaction."""
    tokens = list(dict.fromkeys(verp.token_from_address(address) for address in addresses))
    return [process_bounce(raw, token) for token in tokens]


def _candidates(
    report: BounceReport, verp_token: str | None
) -> tuple[Delivery | None, list[Delivery]]:
    deliveries = Delivery.objects.select_related("message", "message__domain")
    delivery_id = verp.parse_token(verp_token) if verp_token else None
    anchor = deliveries.filter(id=delivery_id).first() if delivery_id else None
    if anchor is not None:
        return anchor, list(deliveries.filter(message_id=anchor.message_id))
    if report.original_message_id:
        message = (
            OutboundMessage.objects.filter(message_id=report.original_message_id)
            .order_by("-id")
            .first()
        )
        if message is not None:
            return None, list(deliveries.filter(message=message))
    return None, []


def _match(
    report: BounceReport, anchor: Delivery | None, candidates: list[Delivery]
) -> list[tuple[Delivery, BounceRecipient | None]]:
    by_address = {delivery.recipient: delivery for delivery in candidates}
    only = anchor or (candidates[0] if len(candidates) == 1 else None)
    matches: dict[int, tuple[Delivery, BounceRecipient | None]] = {}
    for recipient in report.recipients:
        delivery = by_address.get(normalize_address(recipient.address or ""))
        if delivery is None and len(report.recipients) == 1:
            delivery = only  # forwarded or redacted address: the token/sole recipient decides
        if delivery is not None:
            matches.setdefault(delivery.id, (delivery, recipient))
    if not report.recipients and only is not None:
        matches[only.id] = (only, None)
    return list(matches.values())


def _bounce(
    delivery: Delivery,
    recipient: BounceRecipient | None,
    now: datetime,
    outcome: BounceOutcome,
    events: list[EventInput],
    suppressions: list[NewSuppression],
) -> None:
    status = (recipient.status if recipient else None) or ""
    reason = recipient.reason if recipient else "undefined"
    diagnostic = (recipient.diagnostic if recipient else "") or "Bounce report"
    changed = (
        Delivery.objects.filter(id=delivery.id)
        .exclude(status__in=("bounced", "suppressed", "cancelled"))
        .update(
            status="bounced",
            enhanced_status=status[:16],
            reply=diagnostic[:2000],
            reason=reason[:32],
            leased_until=None,
            lease_token="",
            updated_at=now,
        )
    )
    if not changed:
        return
    outcome.bounced += 1
    DeliveryAttempt.objects.create(
        organization_id=delivery.organization_id,
        delivery=delivery,
        outcome=DeliveryAttempt.Outcome.BOUNCED,
        enhanced_status=status[:16],
        reply=f"DSN: {diagnostic}"[:2000],
        remote_host=(recipient.remote_mta if recipient else "")[:255],
        started_at=now,
        finished_at=now,
    )
    events.append(_event(delivery, "bounced", recipient, now))
    if recipient is not None and recipient.permanent and is_address_failure(reason, status):
        suppressions.append(
            _suppression(
                delivery, Suppression.Reason.BOUNCE, "dsn", f"{status} {reason}: {diagnostic}"
            )
        )


def _complaint(
    delivery: Delivery,
    recipient: BounceRecipient | None,
    now: datetime,
    outcome: BounceOutcome,
    events: list[EventInput],
    suppressions: list[NewSuppression],
) -> None:
    changed = Delivery.objects.filter(id=delivery.id, complained_at__isnull=True).update(
        complained_at=now, updated_at=now
    )
    if not changed:
        return
    outcome.complained += 1
    events.append(_event(delivery, "complained", recipient, now))
    feedback = (recipient.feedback_type if recipient else "") or "abuse"
    suppressions.append(_suppression(delivery, Suppression.Reason.COMPLAINT, "arf", feedback))


def _suppression(delivery: Delivery, reason: str, source: str, detail: str) -> NewSuppression:
    return NewSuppression(
        delivery.organization_id,
        delivery.message.domain_id,
        delivery.recipient,
        reason,
        source,
        detail,
        delivery.id,
    )


def _event(
    delivery: Delivery, type: str, recipient: BounceRecipient | None, now: datetime
) -> EventInput:
    payload: dict[str, object] = {
        "delivery_id": delivery.id,
        "message_id": delivery.message.message_id,
        "domain": delivery.message.domain.name,
        "source": "arf" if type == "complained" else "dsn",
    }
    if recipient is not None:
        payload.update(
            status=recipient.status,
            reason=recipient.reason,
            permanent=recipient.permanent,
            diagnostic=recipient.diagnostic[:500],
            remote_mta=recipient.remote_mta,
        )
        if recipient.feedback_type:
            payload["feedback_type"] = recipient.feedback_type
    return EventInput(
        organization_id=delivery.organization_id,
        type=type,
        message_id=delivery.message_id,
        recipient=delivery.recipient,
        tags=delivery.message.tags,
        payload=payload,
        occurred_at=now,
    )
