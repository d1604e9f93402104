"""Delivering outbound mail to local mailboxes: no SMTP, the inbound storage path directly.

Submission calls :func:`deliver_local_now` right after its commit so a colleague's copy is in
their inbox when the send returns; if that fails the rows stay queued and the dispatcher's
local lane delivers them (the inbound Message-ID dedupe makes a repeat harmless).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from django.utils import timezone

from mailcore.services.inbound import InboundItem, Status, deliver_inbound
from mailcore.services.outbound.dispatch import (
    ClaimedDelivery,
    ClaimedMessage,
    claim_due_deliveries,
    load_raw,
)
from mailcore.services.outbound.results import AttemptResult, record_results
from mailcore.services.outbound.retry import Kind
from mailcore.services.recipients import Verdict, resolve_recipient

log = logging.getLogger(__name__)

_OUTCOMES = {
    Status.STORED: (Kind.DELIVERED, 250, "2.0.0", "Delivered to the local mailbox"),
    Status.OVER_QUOTA: (Kind.TEMPORARY, 452, "4.2.2", "Mailbox full, try again later"),
    Status.TOO_BIG_FOR_QUOTA: (Kind.PERMANENT, 552, "5.2.2", "Message exceeds the mailbox quota"),
    Status.FAILED: (Kind.TEMPORARY, 451, "4.3.0", "Temporary local delivery failure"),
}


def deliver_locally(
    deliveries: Sequence[ClaimedDelivery], messages: dict[int, ClaimedMessage]
) -> list[AttemptResult]:
    """Store each delivery in its mailbox(es); one result per delivery. No transaction held."""
    started = timezone.now()
    results: list[AttemptResult] = []
    items: list[tuple[ClaimedDelivery, InboundItem]] = []
    raws: dict[int, bytes] = {}
    for delivery in deliveries:
        message = messages[delivery.message_id]
        resolution = resolve_recipient(delivery.recipient)
        if resolution.verdict is not Verdict.LOCAL or not resolution.targets:
            results.append(
                AttemptResult(
                    delivery,
                    message,
                    Kind.PERMANENT,
                    550,
                    "5.1.1",
                    "5.1.1 Recipient address rejected: User unknown in local mailbox table",
                    remote_host="local",
                    started_at=started,
                    reason="userunknown",
                )  # fmt: skip
            )
            continue
        if delivery.message_id not in raws:
            raws[delivery.message_id] = message.raw or load_raw(message.id)
        item = InboundItem(
            mail_from=message.mail_from,
            recipients=(delivery.recipient,),
            targets=resolution.targets,
            data=raws[delivery.message_id],
            helo="localhost",
        )
        items.append((delivery, item))
    if items:
        outcomes = deliver_inbound([item for _, item in items])
        finished = timezone.now()
        for (delivery, _), outcome in zip(items, outcomes, strict=True):
            kind, code, status, text = _OUTCOMES[outcome.status]
            results.append(
                AttemptResult(
                    delivery,
                    messages[delivery.message_id],
                    kind,
                    code,
                    status,
                    f"{status} {text}",
                    remote_host="local",
                    started_at=started,
                    finished_at=finished,
                    reason="mailboxfull" if kind is Kind.PERMANENT else "",
                )  # fmt: skip
            )
    return results


def deliver_local_now(delivery_ids: Sequence[int]) -> int:
    """Claim and deliver these local deliveries now; returns how many were delivered.

    Called after the submission committed (never inside a transaction). Errors are logged and
    swallowed: the rows stay due and the dispatcher retries them.
    """
    token = uuid.uuid4().hex
    try:
        claim = claim_due_deliveries(lease_token=token, limit=len(delivery_ids), ids=delivery_ids)
        if not claim.deliveries:
            return 0
        results = deliver_locally(claim.deliveries, claim.messages)
        record_results(results, lease_token=token)
    except Exception:
        log.exception("local delivery of %s failed; the dispatcher will retry", delivery_ids)
        return 0
    return sum(result.kind is Kind.DELIVERED for result in results)
