"""Storing received mail: the work behind the SMTP receiver's ``250``.

:func:`deliver_inbound` takes a batch of accepted transactions and stores all of them in one
database transaction (group commit): the raw bytes once per transaction, one message per target
mailbox, attachments, threads, folder and quota counters and a ``received`` event per message.
The caller answers ``250`` only for outcomes whose status is ``STORED`` -- after the commit.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import cast

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics.services.events import EventInput, record_events
from config.metrics import count_if_database_error
from mailcore import mime
from mailcore.models import Attachment, Blob, Mailbox, Message, Thread
from mailcore.services.messages import message_fields
from mailcore.services.realtime import Push, push_on_commit
from mailcore.services.recipients import Target
from mailcore.services.searchdoc import search_vector_expression

log = logging.getLogger(__name__)

SUBJECT_THREAD_WINDOW = timedelta(days=30)


class Status(enum.StrEnum):
    STORED = "stored"
    OVER_QUOTA = "over_quota"  # temporary: the mailbox may get room
    TOO_BIG_FOR_QUOTA = "too_big_for_quota"  # permanent: bigger than the whole quota
    FAILED = "failed"  # temporary: the database refused, the client should retry


@dataclass(frozen=True, slots=True)
class InboundItem:
    """One accepted SMTP transaction. ``data`` is the DATA payload, CRLF, dot-unstuffed."""

    mail_from: str
    recipients: tuple[str, ...]
    targets: tuple[Target, ...]
    data: bytes
    peer_ip: str = "127.0.0.1"
    helo: str = ""
    is_tls: bool = False


@dataclass(slots=True)
class InboundOutcome:
    status: Status
    queue_id: str = ""
    header_message_id: str = ""  # the Message-ID header, without <>; for logs
    message_ids: list[int] = field(default_factory=list)
    duplicate_count: int = 0
    pushes: list[Push] = field(default_factory=list)


def deliver_inbound(items: Sequence[InboundItem], *, push: bool = True) -> list[InboundOutcome]:
    """Store ``items``; one outcome per item, in order.

    The batch commits as one transaction. If that fails, each item is retried in its own
    transaction so one bad item cannot fail the others. With ``push`` the new-mail pushes are
    sent after commit; without, the caller sends ``outcome.pushes`` itself (the SMTP receiver
    does, from its event loop). The caller must not hold a transaction open.
    """
    prepared = [_prepare(item) for item in items]
    try:
        outcomes = _store_batch(prepared)
    except Exception as exc:
        count_if_database_error("inbound_store", exc)
        if len(prepared) == 1:
            log.exception("storing inbound message failed")
            return [InboundOutcome(Status.FAILED)]
        log.warning("batch of %d failed; storing one by one", len(prepared), exc_info=True)
        outcomes = []
        for one in prepared:
            try:
                outcomes.extend(_store_batch([one]))
            except Exception as exc:
                count_if_database_error("inbound_store", exc)
                log.exception("storing inbound message failed")
                outcomes.append(InboundOutcome(Status.FAILED))
    if push:
        for outcome in outcomes:
            push_on_commit(outcome.pushes)
    return outcomes


def ingest_message(item: InboundItem) -> InboundOutcome:
    """Store one message (a batch of one)."""
    return deliver_inbound([item])[0]


@dataclass(slots=True)
class _Prepared:
    item: InboundItem
    raw: bytes
    parsed: mime.ParsedMessage
    received_at: datetime
    queue_id: str


def _prepare(item: InboundItem) -> _Prepared:
    """CPU work done before the transaction: trace headers, hashing, MIME parsing."""
    now = timezone.now()
    digest = hashlib.sha256(item.data).hexdigest()
    queue_id = digest[:12].upper()
    rcpt = f"\r\n\tfor <{item.recipients[0]}>" if len(item.recipients) == 1 else ""
    protocol = "ESMTPS" if item.is_tls else "ESMTP"
    trace = (
        f"Return-Path: <{item.mail_from}>\r\n"
        f"Received: from {_header_safe(item.helo) or 'unknown'} ([{item.peer_ip}])\r\n"
        f"\tby {settings.MAILROOM_HOSTNAME} (Mailroom) with {protocol} id {queue_id}{rcpt};\r\n"
        f"\t{format_datetime(now)}\r\n"
    ).encode("utf-8", "replace")
    raw = trace + item.data
    # Parse what is stored, so the list, the index and the reading view agree.
    return _Prepared(item, raw, mime.parse_message(raw), now, queue_id)


def _header_safe(value: str) -> str:
    return "".join(ch for ch in value if ch.isprintable() and ch not in "()\\")[:200]


def _store_batch(batch: list[_Prepared]) -> list[InboundOutcome]:
    outcomes = [
        InboundOutcome(
            Status.STORED, queue_id=one.queue_id, header_message_id=one.parsed.message_id
        )
        for one in batch
    ]
    with transaction.atomic():
        admitted = _reserve_quota(batch, outcomes)
        blobs = Blob.objects.bulk_create(
            Blob(
                organization_id=one.item.targets[0].organization_id,
                sha256=hashlib.sha256(one.raw).hexdigest(),
                size=len(one.raw),
                data=one.raw,
                created_at=one.received_at,
            )
            for _, one, _ in admitted
        )
        rows: list[tuple[int, Target, _Prepared, Message]] = []
        for (index, one, targets), blob in zip(admitted, blobs, strict=True):
            rows.extend((index, target, one, _message_row(one, target, blob)) for target in targets)
        _assign_threads(rows)
        messages = Message.objects.bulk_create(row[3] for row in rows)
        Attachment.objects.bulk_create(
            Attachment(
                organization_id=message.organization_id,
                message_id=message.id,
                path=info.path,
                filename=info.filename[:255],
                content_type=info.content_type[:127],
                size=info.size,
                content_id=info.content_id[:255],
                is_inline=info.is_inline,
            )
            for (_, _, one, _), message in zip(rows, messages, strict=True)
            for info in one.parsed.attachments
        )
        counts = _bump_folder_counts(messages)
        record_events(
            EventInput(
                organization_id=message.organization_id,
                type="received",
                message_id=message.id,
                recipient=one.item.recipients[0] if len(one.item.recipients) == 1 else "",
                payload={
                    "mailbox_id": message.mailbox_id,
                    "from": one.item.mail_from,
                    "size": message.size,
                    "peer": one.item.peer_ip,
                },
                occurred_at=one.received_at,
            )
            for (_, _, one, _), message in zip(rows, messages, strict=True)
        )
    for (index, target, _, _), message in zip(rows, messages, strict=True):
        outcomes[index].message_ids.append(message.id)
        total, unread = counts[message.folder_id]
        outcomes[index].pushes.append(
            Push(
                target.user_ids,
                {
                    "event": "new_mail",
                    "mailbox_id": target.mailbox_id,
                    "message_ids": [message.id],
                    "folders": [{"id": message.folder_id, "total": total, "unread": unread}],
                },
            )
        )
    return outcomes


def _reserve_quota(
    batch: list[_Prepared], outcomes: list[InboundOutcome]
) -> list[tuple[int, _Prepared, tuple[Target, ...]]]:
    """Lock the target mailboxes, drop copies already stored (the dedupe window), refuse items
    that do not fit, add the sizes of the rest. Returns the items to store with the mailboxes
    that still need them; an item that every mailbox already has is accepted and stores
    nothing (no blob, no quota)."""
    mailbox_ids = sorted({t.mailbox_id for one in batch for t in one.item.targets})
    locked = {
        row["id"]: row
        for row in Mailbox.objects.select_for_update()
        .filter(id__in=mailbox_ids)
        .order_by("id")
        .values("id", "quota_bytes", "used_bytes")
    }
    cutoff = timezone.now() - timedelta(seconds=settings.MAILROOM_INBOUND_DEDUPE_SECONDS)
    seen = _recent_message_ids(batch, list(locked), cutoff)  # under the lock: no race
    admitted: list[tuple[int, _Prepared, tuple[Target, ...]]] = []
    added: dict[int, int] = defaultdict(int)
    for index, one in enumerate(batch):
        size = len(one.raw)
        targets = tuple(t for t in one.item.targets if t.mailbox_id in locked)
        if len(targets) < len(one.item.targets):
            # Deleted since RCPT, or a stale cached answer: 451 and the client retries.
            missing = sorted(t.mailbox_id for t in one.item.targets if t.mailbox_id not in locked)
            log.warning("target mailboxes %s no longer exist", missing)
        if targets and one.parsed.message_id:
            fresh = tuple(t for t in targets if (t.mailbox_id, one.parsed.message_id) not in seen)
            outcomes[index].duplicate_count = len(targets) - len(fresh)
            if not fresh:
                continue  # every copy is already stored: accepted, nothing to write
            targets = fresh
        refused = [
            locked[t.mailbox_id]
            for t in targets
            if locked[t.mailbox_id]["quota_bytes"]
            and locked[t.mailbox_id]["used_bytes"] + added[t.mailbox_id] + size
            > locked[t.mailbox_id]["quota_bytes"]
        ]
        if refused or not targets:
            # All or nothing: a partial accept would need a bounce for the refused recipients.
            too_big = any(size > row["quota_bytes"] for row in refused)
            outcomes[index].status = Status.TOO_BIG_FOR_QUOTA if too_big else Status.OVER_QUOTA
            if not targets:
                outcomes[index].status = Status.FAILED
            continue
        for target in targets:
            added[target.mailbox_id] += size
            seen.add((target.mailbox_id, one.parsed.message_id))  # a resend in the same batch
        admitted.append((index, one, targets))
    with connection.cursor() as cursor:
        for mailbox_id in sorted(added):
            cursor.execute(
                "UPDATE mailcore_mailbox SET used_bytes = used_bytes + %s WHERE id = %s",
                [added[mailbox_id], mailbox_id],
            )
    return admitted


def _recent_message_ids(
    batch: list[_Prepared], mailbox_ids: list[int], cutoff: datetime
) -> set[tuple[int, str]]:
    """(mailbox, Message-ID) pairs already stored within the dedupe window."""
    message_ids = {one.parsed.message_id for one in batch if one.parsed.message_id}
    if not message_ids or not mailbox_ids:
        return set()
    return set(
        Message.objects.filter(
            mailbox_id__in=mailbox_ids, message_id__in=message_ids, received_at__gte=cutoff
        ).values_list("mailbox_id", "message_id")
    )


def _message_row(one: _Prepared, target: Target, blob: Blob) -> Message:
    return Message(
        organization_id=target.organization_id,
        mailbox_id=target.mailbox_id,
        folder_id=target.inbox_folder_id,
        blob=blob,
        message_id=one.parsed.message_id[:255],
        envelope_from=one.item.mail_from[:254],
        envelope_recipient=(one.item.recipients[0] if one.item.recipients else "")[:254],
        received_at=one.received_at,
        search_vector=search_vector_expression(one.parsed),
        **message_fields(one.parsed, one.raw),
    )


def _assign_threads(rows: list[tuple[int, Target, _Prepared, Message]]) -> None:
    """Thread by In-Reply-To/References, then by normalized subject for replies."""
    wanted = {
        (target.mailbox_id, ref)
        for _, target, one, _ in rows
        for ref in [one.parsed.in_reply_to, *one.parsed.references]
        if ref
    }
    known: dict[tuple[int, str], int] = {}
    if wanted:
        for mailbox_id, message_id, known_thread_id in Message.objects.filter(
            mailbox_id__in={m for m, _ in wanted},
            message_id__in={r for _, r in wanted},
            thread__isnull=False,
        ).values_list("mailbox_id", "message_id", "thread_id"):
            known[(mailbox_id, message_id)] = known_thread_id
    pending: dict[tuple[int, str], Thread] = {}  # threads started in this batch
    new_threads: list[Thread] = []
    grown: dict[int, tuple[int, datetime]] = {}
    for _, target, one, message in rows:
        parsed = one.parsed
        subject_key = mime.normalize_subject(parsed.subject)[:255]
        refs = [parsed.in_reply_to, *reversed(parsed.references)]
        keys = [(target.mailbox_id, ref) for ref in refs if ref]
        thread_id = next((known[key] for key in keys if key in known), None)
        thread = next((pending[key] for key in keys if key in pending), None)
        if thread_id is None and thread is None and subject_key and _looks_like_reply(parsed):
            thread_id = (
                Thread.objects.filter(
                    mailbox_id=target.mailbox_id,
                    subject_key=subject_key,
                    last_message_at__gte=one.received_at - SUBJECT_THREAD_WINDOW,
                )
                .order_by("-last_message_at")
                .values_list("id", flat=True)
                .first()
            )
        if thread_id is not None:
            message.thread_id = thread_id
            count, _ = grown.get(thread_id, (0, one.received_at))
            grown[thread_id] = (count + 1, one.received_at)
        else:
            if thread is None:
                thread = Thread(
                    organization_id=target.organization_id,
                    mailbox_id=target.mailbox_id,
                    subject_key=subject_key,
                    message_count=0,
                    last_message_at=one.received_at,
                )
                new_threads.append(thread)
            thread.message_count += 1
            thread.last_message_at = one.received_at
            message.thread = thread
        if parsed.message_id:
            if message.thread_id is not None:
                known[(target.mailbox_id, parsed.message_id)] = message.thread_id
            else:  # no thread id yet: message.thread is the unsaved thread set above
                pending[(target.mailbox_id, parsed.message_id)] = cast(Thread, message.thread)
    Thread.objects.bulk_create(new_threads)
    for _, _, _, message in rows:
        if message.thread is not None and message.thread_id is None:
            message.thread_id = message.thread.id
    with connection.cursor() as cursor:
        for thread_id in sorted(grown):
            count, last = grown[thread_id]
            cursor.execute(
                "UPDATE mailcore_thread SET message_count = message_count + %s,"
                " last_message_at = GREATEST(last_message_at, %s) WHERE id = %s",
                [count, last, thread_id],
            )


def _looks_like_reply(parsed: mime.ParsedMessage) -> bool:
    subject = parsed.subject.strip()
    return bool(parsed.in_reply_to or parsed.references) or (
        mime.normalize_subject(subject) != subject.casefold().strip()
    )


def _bump_folder_counts(messages: list[Message]) -> dict[int, tuple[int, int]]:
    """Add the new messages to their folders' counters; returns folder -> (total, unread)."""
    added: dict[int, int] = defaultdict(int)
    for message in messages:
        added[message.folder_id] += 1
    counts: dict[int, tuple[int, int]] = {}
    with connection.cursor() as cursor:
        for folder_id in sorted(added):
            cursor.execute(
                "UPDATE mailcore_folder SET total_count = total_count + %s,"
                " unread_count = unread_count + %s WHERE id = %s"
                " RETURNING total_count, unread_count",
                [added[folder_id], added[folder_id], folder_id],
            )
            row = cursor.fetchone()
            if row is None:
                raise LookupError(f"folder {folder_id} does not exist")
            counts[folder_id] = (row[0], row[1])
    return counts
