"""Retention: purge what is older than the policy, in small batches, and log each run.

What goes, and how (``docs/operations.md``, "Retention"):

- Messages in Trash and Junk, counted from when they entered the folder (``moved_at``, or
  ``received_at`` for mail delivered straight there): deleted through
  :func:`mailcore.services.messages.purge_messages`, so quota, folder and thread counts stay
  right and blobs are deleted once nothing refers to them. Rows, not partitions: a message
  enters Trash long after its row was written, so no time partition holds "old trash".
- Events: the daily partitions of ``analytics_event`` are dropped (no row deletes).
- Webhook delivery logs and finished outbound messages (with their deliveries and attempts):
  append-only, so ids grow with time; everything below the first id younger than the cutoff
  is deleted in id-ordered batches over the primary key.

Every batch is its own short transaction (``MAILROOM_RETENTION_BATCH_SIZE`` rows, rows locked by
someone else skipped), and a run stops after ``MAILROOM_RETENTION_MAX_SECONDS``; the next run
goes on. One run at a time (an advisory lock); a second one returns at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.services import partitions
from api.models import WebhookDelivery
from mailcore.models import Blob, Folder, Message, OutboundMessage, RetentionRun
from mailcore.services.messages import delete_unreferenced_blobs, purge_messages

log = logging.getLogger(__name__)

LOCK_ID = 0x6D61696C726574  # pg advisory lock key: one retention run at a time
FOLDER_CHUNK = 500  # Trash/Junk folders scanned per candidate query
FINAL_STATUSES = ("delivered", "bounced", "failed", "suppressed", "cancelled")
Kind = RetentionRun.Kind


@dataclass(frozen=True, slots=True)
class Policy:
    trash_days: int
    spam_days: int
    event_days: int
    webhook_log_days: int
    outbound_days: int
    batch_size: int
    max_seconds: float

    def days(self, kind: str) -> int:
        return {
            Kind.TRASH: self.trash_days,
            Kind.SPAM: self.spam_days,
            Kind.EVENTS: self.event_days,
            Kind.WEBHOOK_LOGS: self.webhook_log_days,
            Kind.OUTBOUND: self.outbound_days,
        }[Kind(kind)]


def effective_policy() -> Policy:
    """The policy the settings give (0 days keeps that kind of data forever)."""
    return Policy(
        trash_days=settings.MAILROOM_TRASH_RETENTION_DAYS,
        spam_days=settings.MAILROOM_SPAM_RETENTION_DAYS,
        event_days=settings.MAILROOM_EVENT_RETENTION_DAYS,
        webhook_log_days=settings.MAILROOM_WEBHOOK_LOG_RETENTION_DAYS,
        outbound_days=settings.MAILROOM_OUTBOUND_RETENTION_DAYS,
        batch_size=settings.MAILROOM_RETENTION_BATCH_SIZE,
        max_seconds=settings.MAILROOM_RETENTION_MAX_SECONDS,
    )


@dataclass(slots=True)
class _Tally:
    rows: int = 0
    bytes: int = 0
    blobs: int = 0
    partitions: list[str] = field(default_factory=list)
    is_complete: bool = True


@dataclass(slots=True)
class _Budget:
    deadline: float

    @property
    def is_spent(self) -> bool:
        return time.monotonic() >= self.deadline


def run_retention(
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    kinds: list[str] | None = None,
    policy: Policy | None = None,
) -> list[RetentionRun]:
    """Apply the policy to every kind (or ``kinds``); returns the runs logged, one per kind.

    Owns its transactions (one per batch); the caller must not hold one. Returns ``[]`` when
    another run holds the lock.
    """
    now = now or timezone.now()
    policy = policy or effective_policy()
    budget = _Budget(time.monotonic() + policy.max_seconds)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_ID])
        if not cursor.fetchone()[0]:
            log.info("retention: another run holds the lock; skipping")
            return []
    try:
        runs = [
            _run_kind(Kind(kind), policy, now, budget, dry_run=dry_run)
            for kind in (kinds or Kind.values)
        ]
        if not dry_run:
            RetentionRun.objects.filter(
                started_at__lt=now - timedelta(days=settings.MAILROOM_RETENTION_RUN_LOG_DAYS)
            ).delete()
        return runs
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_ID])


def _run_kind(
    kind: Kind, policy: Policy, now: datetime, budget: _Budget, *, dry_run: bool
) -> RetentionRun:
    days = policy.days(kind)
    run = RetentionRun(
        kind=kind,
        started_at=timezone.now(),
        retention_days=days,
        cutoff=now - timedelta(days=days) if days > 0 else None,
        is_dry_run=dry_run,
    )
    tally = _Tally()
    try:
        if run.cutoff is not None:
            purge = _PURGES[kind]
            purge(run.cutoff, tally, budget, policy.batch_size, dry_run=dry_run)
    except Exception as exc:  # one kind failing must not stop the others; the log says why
        log.exception("retention of %s failed", kind)
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        tally.is_complete = False
    run.rows_removed, run.bytes_removed, run.blobs_removed = tally.rows, tally.bytes, tally.blobs
    run.partitions_dropped, run.is_complete = tally.partitions, tally.is_complete
    run.finished_at = timezone.now()
    run.save()
    log.info(
        "retention %s%s: %d rows, %d bytes, %d partitions",
        kind,
        " (dry run)" if dry_run else "",
        tally.rows,
        tally.bytes,
        len(tally.partitions),
    )
    return run


# --- Trash and Junk -----------------------------------------------------------------------------


def _entered_before(cutoff: datetime) -> Q:
    return Q(moved_at__lt=cutoff) | Q(moved_at__isnull=True, received_at__lt=cutoff)


def _folder_chunks(role: str) -> Iterator[list[int]]:
    last = 0
    while True:
        chunk = list(
            Folder.objects.filter(role=role, total_count__gt=0, id__gt=last)
            .order_by("id")
            .values_list("id", flat=True)[:FOLDER_CHUNK]
        )
        if not chunk:
            return
        yield chunk
        last = chunk[-1]


def _old_messages(folder_ids: list[int], cutoff: datetime) -> QuerySet[Message]:
    # The alias matches the msg_folder_entered expression index.
    return (
        Message.objects.filter(folder_id__in=folder_ids)
        .alias(entered=Coalesce("moved_at", "received_at"))
        .filter(entered__lt=cutoff)
    )


def _purge_folders(
    role: str, cutoff: datetime, tally: _Tally, budget: _Budget, batch: int, *, dry_run: bool
) -> None:
    for chunk in _folder_chunks(role):
        candidates = _old_messages(chunk, cutoff)
        if dry_run:
            _count_messages(candidates, tally)
            continue
        while True:
            if budget.is_spent:
                tally.is_complete = False
                return
            rows = list(candidates.values_list("id", "mailbox_id")[:batch])
            if not rows:
                break
            purged = purge_messages(
                Q(id__in=[row[0] for row in rows], folder_id__in=chunk) & _entered_before(cutoff),
                {row[1] for row in rows},
                skip_locked=True,
            )
            tally.rows += purged.messages
            tally.blobs += purged.blobs
            tally.bytes += purged.blob_bytes
            if purged.messages == 0:  # all locked by users right now: the next run takes them
                tally.is_complete = False
                break
            if len(rows) < batch:
                break


def _count_messages(candidates: QuerySet[Message], tally: _Tally) -> None:
    """What a real run would remove: the messages, and the blobs only they use."""
    tally.rows += candidates.count()
    blob_ids = candidates.values("blob_id")
    still_used = Message.objects.filter(blob_id__in=blob_ids).exclude(
        id__in=candidates.values("id")
    )
    freed = (
        Blob.objects.filter(id__in=blob_ids)
        .exclude(id__in=still_used.values("blob_id"))
        .exclude(id__in=OutboundMessage.objects.values("blob_id"))
    )
    totals = freed.aggregate(count=Count("id"), size=Coalesce(Sum("size"), 0))
    tally.blobs += totals["count"]
    tally.bytes += totals["size"]


def purge_trash(
    cutoff: datetime, tally: _Tally, budget: _Budget, batch: int, *, dry_run: bool
) -> None:
    _purge_folders(Folder.Role.TRASH, cutoff, tally, budget, batch, dry_run=dry_run)


def purge_spam(
    cutoff: datetime, tally: _Tally, budget: _Budget, batch: int, *, dry_run: bool
) -> None:
    _purge_folders(Folder.Role.JUNK, cutoff, tally, budget, batch, dry_run=dry_run)


# --- Events -------------------------------------------------------------------------------------


def purge_events(
    cutoff: datetime, tally: _Tally, budget: _Budget, batch: int, *, dry_run: bool
) -> None:
    """Drop the daily partitions entirely older than the cutoff's day (no row deletes)."""
    day = cutoff.astimezone(UTC).date()
    if dry_run:
        found = partitions.existing_partitions()
        tally.partitions = [found[d] for d in sorted(found) if d < day]
        return
    tally.partitions = partitions.drop_expired_partitions(today=day, days=0)


# --- Append-only logs: webhook deliveries, finished outbound messages ---------------------------


def _first_id_at_or_after(table: str, cutoff: datetime) -> int | None:
    """The first id written at or after ``cutoff`` (ids grow with time in these tables)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE created_at >= %s ORDER BY id LIMIT 1",  # noqa: S608
            [cutoff],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _below(table: str, cutoff: datetime, alias: str) -> tuple[str, list[int | datetime]]:
    boundary = _first_id_at_or_after(table, cutoff)
    if boundary is None:
        return f"{alias}.created_at < %s", [cutoff]
    return f"{alias}.id < %s AND {alias}.created_at < %s", [boundary, cutoff]


def purge_webhook_logs(
    cutoff: datetime, tally: _Tally, budget: _Budget, batch: int, *, dry_run: bool
) -> None:
    table = WebhookDelivery._meta.db_table
    where, params = _below(table, cutoff, "w")
    with connection.cursor() as cursor:
        if dry_run:
            cursor.execute(f"SELECT count(*) FROM {table} w WHERE {where}", params)  # noqa: S608
            tally.rows = cursor.fetchone()[0]
            return
        while not budget.is_spent:  # autocommit: every DELETE is its own short transaction
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT w.id FROM {table} w WHERE {where}"  # noqa: S608
                " ORDER BY w.id LIMIT %s FOR UPDATE SKIP LOCKED)",
                [*params, batch],
            )
            tally.rows += cursor.rowcount
            if cursor.rowcount < batch:
                return
    tally.is_complete = False


_FINISHED_OUTBOUND = """
FROM mailcore_outboundmessage m
WHERE m.id > %s AND {where}
  AND NOT EXISTS (SELECT 1 FROM mailcore_delivery d
                  WHERE d.message_id = m.id AND d.status <> ALL(%s))
"""


def purge_outbound(
    cutoff: datetime, tally: _Tally, budget: _Budget, batch: int, *, dry_run: bool
) -> None:
    """Outbound messages whose every delivery is final, with their deliveries and attempts."""
    where, params = _below(OutboundMessage._meta.db_table, cutoff, "m")
    finished = _FINISHED_OUTBOUND.format(where=where)
    if dry_run:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) {finished}", [0, *params, list(FINAL_STATUSES)])
            tally.rows = cursor.fetchone()[0]
        return
    last = 0
    while True:
        if budget.is_spent:
            tally.is_complete = False
            return
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT m.id, m.blob_id {finished} ORDER BY m.id LIMIT %s"
                " FOR UPDATE OF m SKIP LOCKED",
                [last, *params, list(FINAL_STATUSES), batch],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            ids = [row[0] for row in rows]
            cursor.execute(
                "DELETE FROM mailcore_deliveryattempt WHERE delivery_id IN"
                " (SELECT id FROM mailcore_delivery WHERE message_id = ANY(%s))",
                [ids],
            )
            cursor.execute("DELETE FROM mailcore_delivery WHERE message_id = ANY(%s)", [ids])
            cursor.execute("DELETE FROM mailcore_outboundmessage WHERE id = ANY(%s)", [ids])
            tally.rows += len(rows)
            blobs, size = delete_unreferenced_blobs({row[1] for row in rows})
            tally.blobs += blobs
            tally.bytes += size
        if len(rows) < batch:
            return


_PURGES = {
    Kind.TRASH: purge_trash,
    Kind.SPAM: purge_spam,
    Kind.EVENTS: purge_events,
    Kind.WEBHOOK_LOGS: purge_webhook_logs,
    Kind.OUTBOUND: purge_outbound,
}
