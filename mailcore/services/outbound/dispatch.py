"""Claiming work from the outbox: due deliveries, leases, lost workers, operator actions.

A worker claims with ``SELECT … FOR UPDATE SKIP LOCKED`` (concurrent claimers never wait for or
take each other's rows) and in the same transaction moves the rows to ``sending`` with a lease
(``leased_until``, ``lease_token``). Results are written only where the lease token still
matches. A worker that dies leaves ``sending`` rows whose lease runs out;
:func:`recover_expired_leases` (the beat task, and every running dispatcher, every few seconds)
makes them due again. So a lost Celery message, a killed worker or a flushed Redis costs
latency, never mail; the price is that a message whose ``250`` was received but not yet
recorded when the worker died is sent again (at-least-once).

The claim step also applies what must hold at send time, not only at submit time: suppressions
added while the mail waited, sending-domain quotas and destination rates (rows over a limit are
put back with a later ``next_attempt_at``, without counting an attempt).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from analytics.services.events import EventInput, record_events
from analytics.services.guardrails import is_sending_paused
from config.metrics import DELIVERIES
from mailcore.models import Delivery, DeliveryAttempt
from mailcore.queueing import enqueue_on_commit
from mailcore.services.outbound import throttle
from mailcore.services.outbound.mx import route_for

log = logging.getLogger(__name__)

NUDGE_KEY = "outbound:nudge"
LARGE_MESSAGE_BYTES = 1 << 20  # bigger raw bytes are loaded when sent, not with the claim
ACTIVE = ("queued", "deferred")


@dataclass(slots=True)
class ClaimedMessage:
    id: int
    organization_id: int
    domain_id: int
    domain_name: str
    mail_from: str
    message_id: str
    size: int
    tags: list[str]
    raw: bytes | None  # None for large messages: load with load_raw()
    # Effective tracking (the message's choice, else its domain's settings). Any of them on:
    # one body (and transaction) per recipient, with links signed for that delivery.
    is_tracked: bool = False
    track_opens: bool = False
    track_clicks: bool = False
    track_unsubscribes: bool = False


@dataclass(slots=True)
class ClaimedDelivery:
    id: int
    message_id: int
    recipient: str
    recipient_domain: str
    is_local: bool
    attempt_count: int  # including the attempt being made
    expires_at: datetime


@dataclass(slots=True)
class Claim:
    lease_token: str
    deliveries: list[ClaimedDelivery] = field(default_factory=list)
    messages: dict[int, ClaimedMessage] = field(default_factory=dict)


# How often deliveries of a paused sending domain look again (the pause is cached 30 s).
GUARDRAIL_RECHECK = timedelta(seconds=60)

_CLAIM_SQL = """
SELECT d.id, d.message_id, d.recipient, d.recipient_domain, d.is_local, d.attempt_count,
       d.expires_at, d.organization_id, m.domain_id, dom.name
FROM mailcore_delivery d
JOIN mailcore_outboundmessage m ON m.id = d.message_id
JOIN mailcore_domain dom ON dom.id = m.domain_id
WHERE d.status IN ('queued', 'deferred') AND d.next_attempt_at <= %s {extra}
ORDER BY d.next_attempt_at
LIMIT %s
FOR UPDATE OF d SKIP LOCKED
"""
# One row of _CLAIM_SQL, in its column order.
_Row = tuple[Any, ...]


def claim_due_deliveries(
    *,
    lease_token: str,
    limit: int,
    now: datetime | None = None,
    lease_seconds: float | None = None,
    ids: Sequence[int] | None = None,
) -> Claim:
    """Lease up to ``limit`` due deliveries (only ``ids`` if given) to ``lease_token``.

    Owns its transaction; the caller must not hold one (the lease must be committed before
    anything is sent).
    """
    now = now or timezone.now()
    lease = timedelta(seconds=lease_seconds or settings.MAILROOM_OUTBOUND_LEASE_SECONDS)
    claim = Claim(lease_token)
    with transaction.atomic(), connection.cursor() as cursor:
        params: list[datetime | list[int]]
        extra, params = "", [now]
        if ids is not None:
            extra, params = "AND d.id = ANY(%s)", [now, list(ids)]
        cursor.execute(_CLAIM_SQL.format(extra=extra), [*params, limit])
        rows = cursor.fetchall()
        if not rows:
            return claim
        suppressed = _suppressed(cursor, rows)
        later: dict[datetime, list[int]] = defaultdict(list)
        taken = []
        for group in _limited_groups(rows, suppressed, now, later):
            taken.extend(group)
        if suppressed:
            _mark_suppressed(cursor, [row for row in rows if row[0] in suppressed], now)
        for when, delayed in later.items():
            cursor.execute(
                "UPDATE mailcore_delivery SET next_attempt_at = %s WHERE id = ANY(%s)",
                [when, delayed],
            )
        if not taken:
            return claim
        cursor.execute(
            "UPDATE mailcore_delivery SET status = 'sending', leased_until = %s,"
            " lease_token = %s, attempt_count = attempt_count + 1, updated_at = %s"
            " WHERE id = ANY(%s)",
            [now + lease, lease_token, now, [row[0] for row in taken]],
        )
        for row in taken:
            claim.deliveries.append(
                ClaimedDelivery(row[0], row[1], row[2], row[3], row[4], row[5] + 1, row[6])
            )
        claim.messages = _load_messages(cursor, {row[1] for row in taken})
    return claim


def _suppressed(cursor: CursorWrapper, rows: list[_Row]) -> set[int]:
    cursor.execute(
        "SELECT domain_id, address FROM mailcore_suppression"
        " WHERE (domain_id, address) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))",
        [[row[8] for row in rows], [row[2] for row in rows]],
    )
    pairs = set(cursor.fetchall())
    return {row[0] for row in rows if (row[8], row[2]) in pairs} if pairs else set()


def _limited_groups(
    rows: list[_Row], suppressed: set[int], now: datetime, later: dict[datetime, list[int]]
) -> Iterator[list[_Row]]:
    """Rows that fit the sending quotas and destination rates, per destination; the rest are
    added to ``later`` (retry moment -> ids)."""
    by_sender: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        if row[0] not in suppressed:
            by_sender["" if row[4] else row[9]].append(row)
    fitting = by_sender.pop("", [])
    for sender, group in by_sender.items():
        if is_sending_paused(sender):  # reputation guardrail: wait until an operator resumes
            later[now + GUARDRAIL_RECHECK].extend(row[0] for row in group)
            continue
        allowed = throttle.take_sending_quota(sender, len(group), now)
        fitting.extend(group[:allowed])
        later[throttle.next_quota_window(now)].extend(row[0] for row in group[allowed:])
    by_route: dict[str, list[_Row]] = defaultdict(list)
    for row in fitting:
        by_route[route_for(row[3], is_local=row[4]).key].append(row)
    for route_key, group in by_route.items():
        domain = group[0][3]
        per_minute = throttle.destination_limits(route_key, domain).per_minute
        allowed = len(group)
        if per_minute and route_key != "local":
            allowed = throttle.take_destination_rate(route_key, per_minute, len(group), now)
        later[throttle.next_minute(now)].extend(row[0] for row in group[allowed:])
        yield group[:allowed]


def _mark_suppressed(cursor: CursorWrapper, rows: list[_Row], now: datetime) -> None:
    cursor.execute(
        "UPDATE mailcore_delivery SET status = 'suppressed', updated_at = %s,"
        " reply = 'Recipient is on the suppression list' WHERE id = ANY(%s)",
        [now, [row[0] for row in rows]],
    )
    transaction.on_commit(partial(DELIVERIES.labels("suppressed").inc, len(rows)))
    record_events(
        EventInput(
            organization_id=row[7],
            type="suppressed",
            message_id=row[1],
            recipient=row[2],
            payload={"delivery_id": row[0], "domain": row[9], "stage": "send"},
            occurred_at=now,
        )
        for row in rows
    )


# The message's tracking choice wins; NULL there means its domain's setting (analytics app's
# DomainTracking, absent = off). Resolved in the same query that loads the messages. The
# domain's settings are for integrators' mail (API, SMTP submission): a person's mail written
# in the webmail is never tracked.
_MESSAGES_SQL = """
SELECT m.id, m.organization_id, m.domain_id, dom.name, m.mail_from, m.message_id, m.size, m.tags,
       CASE WHEN m.size <= %s THEN b.data END,
       COALESCE(m.track_opens, t.track_opens, FALSE),
       COALESCE(m.track_clicks, t.track_clicks, FALSE),
       COALESCE(t.track_unsubscribes, FALSE)
FROM mailcore_outboundmessage m
JOIN mailcore_blob b ON b.id = m.blob_id
JOIN mailcore_domain dom ON dom.id = m.domain_id
LEFT JOIN analytics_domaintracking t ON t.domain_id = m.domain_id AND m.source <> 'webmail'
WHERE m.id = ANY(%s)
"""


def _load_messages(cursor: CursorWrapper, ids: set[int]) -> dict[int, ClaimedMessage]:
    cursor.execute(_MESSAGES_SQL, [LARGE_MESSAGE_BYTES, list(ids)])
    messages = {}
    for row in cursor.fetchall():
        (id_, organization_id, domain_id, domain_name, mail_from, message_id, size, tags,
         data, track_opens, track_clicks, track_unsubscribes) = row  # fmt: skip
        messages[id_] = ClaimedMessage(
            id_,
            organization_id,
            domain_id,
            domain_name,
            mail_from,
            message_id,
            size,
            tags,
            bytes(data) if data is not None else None,
            is_tracked=track_opens or track_clicks or track_unsubscribes,
            track_opens=track_opens,
            track_clicks=track_clicks,
            track_unsubscribes=track_unsubscribes,
        )
    return messages


def load_raw(message_id: int) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.data FROM mailcore_outboundmessage m JOIN mailcore_blob b"
            " ON b.id = m.blob_id WHERE m.id = %s",
            [message_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"outbound message {message_id} does not exist")
    return bytes(row[0])


def renew_leases(lease_token: str, *, now: datetime | None = None) -> int:
    """Extend every lease this worker holds (it is alive and still working)."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.MAILROOM_OUTBOUND_LEASE_SECONDS)
    return Delivery.objects.filter(lease_token=lease_token, status="sending").update(
        leased_until=now + lease
    )


def release_claimed(lease_token: str, ids: Sequence[int], *, retry_at: datetime) -> int:
    """Give back claimed rows that were not tried (shutdown, no connection slot)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mailcore_delivery SET attempt_count = attempt_count - 1,"
            " status = CASE WHEN attempt_count > 1 THEN 'deferred' ELSE 'queued' END,"
            " next_attempt_at = %s, leased_until = NULL, lease_token = ''"
            " WHERE id = ANY(%s) AND status = 'sending' AND lease_token = %s",
            [retry_at, list(ids), lease_token],
        )
        return cursor.rowcount


def recover_expired_leases(*, now: datetime | None = None) -> int:
    """Make deliveries of dead workers due again; returns how many. Owns its transaction."""
    now = now or timezone.now()
    reply = "Delivery interrupted (worker lost before recording the result); retrying"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mailcore_delivery d SET status = 'deferred', next_attempt_at = %s,"
            " leased_until = NULL, lease_token = '', reply = %s, updated_at = %s"
            " FROM mailcore_outboundmessage m"
            " WHERE d.status = 'sending' AND d.leased_until < %s AND m.id = d.message_id"
            " RETURNING d.id, d.organization_id, d.message_id, d.recipient, m.tags",
            [now, reply, now, now],
        )
        rows = cursor.fetchall()
        if not rows:
            return 0
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                organization_id=row[1],
                delivery_id=row[0],
                outcome=DeliveryAttempt.Outcome.DEFERRED,
                reply=reply,
                started_at=now,
                finished_at=now,
            )
            for row in rows
        )
        record_events(
            EventInput(
                organization_id=row[1],
                type="deferred",
                message_id=row[2],
                recipient=row[3],
                tags=row[4],
                payload={"delivery_id": row[0], "reply": reply},
                occurred_at=now,
            )
            for row in rows
        )
    DELIVERIES.labels("deferred").inc(len(rows))
    log.warning("recovered %d deliveries from expired leases", len(rows))
    return len(rows)


def has_pending_work(*, now: datetime | None = None) -> bool:
    """Whether anything is due now or leased (possibly to a dead worker)."""
    now = now or timezone.now()
    return (
        Delivery.objects.filter(status__in=ACTIVE, next_attempt_at__lte=now).exists()
        or Delivery.objects.filter(status="sending").exists()
    )


NUDGE_LOCAL_SECONDS = 0.2
_last_nudge = [float("-inf")]


def request_dispatch() -> None:
    """After the caller's commit, wake a dispatcher (at most one wake-up waits at a time).

    A process that sent a wake-up less than ``NUDGE_LOCAL_SECONDS`` ago skips even the Redis
    check: a dispatcher woken that recently is still running and polls for new rows every
    50 ms, so a burst of submissions costs one Redis round trip per 200 ms, not one each.
    """
    now = time.monotonic()
    if now - _last_nudge[0] < NUDGE_LOCAL_SECONDS:
        return
    _last_nudge[0] = now
    enqueue_on_commit("mailcore.tasks.dispatch_outbound", dedupe_key=NUDGE_KEY)


# --- Operator actions (admin, API) --------------------------------------------------------------


def retry_now(delivery_ids: Sequence[int], *, now: datetime | None = None) -> int:
    """Make queued/deferred deliveries due now, and put failed ones back in the queue with a
    fresh maximum age. Returns how many rows changed."""
    now = now or timezone.now()
    expires = now + timedelta(seconds=settings.MAILROOM_MAX_RETRY_AGE)
    with transaction.atomic():
        changed = Delivery.objects.filter(id__in=delivery_ids, status__in=ACTIVE).update(
            next_attempt_at=now, updated_at=now
        )
        changed += Delivery.objects.filter(id__in=delivery_ids, status="failed").update(
            status="deferred", next_attempt_at=now, expires_at=expires, updated_at=now
        )
        if changed:
            request_dispatch()
    return changed


def cancel_deliveries(delivery_ids: Sequence[int], *, now: datetime | None = None) -> int:
    """Cancel deliveries that have not been sent (queued or deferred). Returns how many."""
    now = now or timezone.now()
    return Delivery.objects.filter(id__in=delivery_ids, status__in=ACTIVE).update(
        status="cancelled", updated_at=now, reply="Cancelled by an operator"
    )
