"""Writing what happened to each delivery: status, the attempt log, events, suppressions.

One call records a batch of attempts in one transaction. The dispatcher calls it with every
result that came in since the last commit (group commit across connections), and a connection
starts its next transaction only after its own results are committed: a crash never re-sends to
a recipient whose delivery was recorded.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics.services.events import EventInput, record_events
from config.metrics import BOUNCES, DELIVERIES, DELIVERY_LATENCY
from mailcore.bounces import classify_reason
from mailcore.models import DeliveryAttempt, Suppression
from mailcore.services.outbound.dispatch import ClaimedDelivery, ClaimedMessage
from mailcore.services.outbound.retry import Decision, Kind, decide
from mailcore.services.outbound.suppression import (
    NewSuppression,
    add_suppressions,
    is_address_failure,
)

log = logging.getLogger(__name__)

_UPDATE_SQL = """
UPDATE mailcore_delivery d SET
    status = v.status,
    next_attempt_at = COALESCE(v.next_attempt_at, d.next_attempt_at),
    leased_until = NULL, lease_token = '',
    reply_code = v.reply_code, enhanced_status = v.enhanced_status, reply = v.reply,
    reason = v.reason, updated_at = %s,
    delivered_at = CASE WHEN v.status = 'delivered' THEN %s ELSE d.delivered_at END
FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::smallint[], %s::text[], %s::text[],
            %s::text[])
     AS v(id, status, next_attempt_at, reply_code, enhanced_status, reply, reason)
WHERE d.id = v.id AND d.status = 'sending' AND d.lease_token = %s
RETURNING d.id, d.created_at
"""


@dataclass(slots=True)
class AttemptResult:
    delivery: ClaimedDelivery
    message: ClaimedMessage
    kind: Kind
    reply_code: int | None
    enhanced_status: str
    reply: str
    remote_host: str = ""
    is_tls: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str = ""  # for permanent failures; classified from the reply when empty


def record_results(
    results: Sequence[AttemptResult],
    *,
    lease_token: str,
    now: datetime | None = None,
    rand: Callable[[], float] = random.random,
) -> set[int]:
    """Apply ``results`` of deliveries leased to ``lease_token``; returns the ids applied.

    A delivery whose lease was lost (recovered as expired, then claimed by another worker) is
    not changed, but its attempt is still logged. Owns its transaction.
    """
    now = now or timezone.now()
    decisions: list[Decision] = []
    for result in results:
        decisions.append(
            decide(
                result.kind,
                attempt=result.delivery.attempt_count,
                now=now,
                expires_at=result.delivery.expires_at,
                base_seconds=settings.MAILROOM_RETRY_BASE_SECONDS,
                cap_seconds=settings.MAILROOM_RETRY_MAX_SECONDS,
                rand=rand,
            )
        )
        if result.kind is Kind.PERMANENT and not result.reason:
            result.reason = classify_reason(result.enhanced_status or None, result.reply)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _UPDATE_SQL,
                [
                    now,
                    now,
                    [r.delivery.id for r in results],
                    [d.status for d in decisions],
                    [d.next_attempt_at for d in decisions],
                    [r.reply_code for r in results],
                    [r.enhanced_status[:16] for r in results],
                    [r.reply[:2000] for r in results],
                    [r.reason[:32] if r.kind is Kind.PERMANENT else "" for r in results],
                    lease_token,
                ],
            )
            accepted_at = dict(cursor.fetchall())
            applied = set(accepted_at)
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                organization_id=r.message.organization_id,
                delivery_id=r.delivery.id,
                outcome=d.status,
                reply_code=r.reply_code,
                enhanced_status=r.enhanced_status[:16],
                reply=r.reply[:2000],
                remote_host=r.remote_host[:255],
                is_tls=r.is_tls,
                started_at=r.started_at or now,
                finished_at=r.finished_at or now,
            )
            for r, d in zip(results, decisions, strict=True)
        )
        add_suppressions(
            [
                NewSuppression(
                    r.message.organization_id,
                    r.message.domain_id,
                    r.delivery.recipient,
                    Suppression.Reason.BOUNCE,
                    "smtp",
                    f"{r.enhanced_status or r.reply_code} {r.reason}: {r.reply}".strip(),
                    r.delivery.id,
                )
                for r, d in zip(results, decisions, strict=True)
                if d.status == "bounced"
                and r.delivery.id in applied
                and is_address_failure(r.reason, r.enhanced_status)
            ]
        )
        record_events(
            EventInput(
                organization_id=r.message.organization_id,
                type=d.status,
                message_id=r.message.id,
                recipient=r.delivery.recipient,
                tags=r.message.tags,
                payload=_payload(r, d),
                occurred_at=r.finished_at or now,
            )
            for r, d in zip(results, decisions, strict=True)
            if r.delivery.id in applied
        )
    _observe(results, decisions, accepted_at, now)
    return applied


def _observe(
    results: Sequence[AttemptResult],
    decisions: Sequence[Decision],
    accepted_at: dict[int, datetime],
    now: datetime,
) -> None:
    """Metrics and one log line per recorded result (after the commit)."""
    for result, decision in zip(results, decisions, strict=True):
        delivery = result.delivery
        if delivery.id not in accepted_at:
            continue  # lease lost: another worker owns the outcome
        DELIVERIES.labels(decision.status).inc()
        if decision.status == "delivered":
            waited = (result.finished_at or now) - accepted_at[delivery.id]
            DELIVERY_LATENCY.observe(max(0.0, waited.total_seconds()))
        elif decision.status == "bounced":
            BOUNCES.labels("smtp").inc()
        log.log(
            logging.INFO if decision.status == "delivered" else logging.WARNING,
            "delivery %s to <%s>: %s %s",
            delivery.id,
            delivery.recipient,
            decision.status,
            result.reply[:200],
            extra={
                "delivery_id": delivery.id,
                "outbound_id": result.message.id,
                "message_id": result.message.message_id,
                "recipient": delivery.recipient,
                "status": decision.status,
                "attempt": delivery.attempt_count,
                "reply_code": result.reply_code,
                "enhanced_status": result.enhanced_status,
                "remote_host": result.remote_host,
            },
        )


def _payload(result: AttemptResult, decision: Decision) -> dict[str, object]:
    payload: dict[str, object] = {
        "delivery_id": result.delivery.id,
        "message_id": result.message.message_id,
        "domain": result.message.domain_name,
        "attempt": result.delivery.attempt_count,
        "code": result.reply_code,
        "status": result.enhanced_status,
        "reply": result.reply[:500],
        "remote_host": result.remote_host,
        "tls": result.is_tls,
    }
    if decision.status == "bounced":
        payload["reason"] = result.reason
        payload["permanent"] = True
    if decision.next_attempt_at is not None:
        payload["retry_at"] = decision.next_attempt_at.isoformat()
    return payload
