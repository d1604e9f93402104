"""Accepting a message for sending: the transactional outbox.

:func:`submit_outbound` writes the raw bytes, the message row and one delivery row per
recipient, plus a ``sent`` (or ``suppressed``) event per recipient, in ONE transaction; after
the commit it wakes the dispatcher and stores local recipients' copies. If the process dies
right after the commit, nothing is lost: the rows are due and the beat job finds them.

The stored bytes are what will be sent: line endings normalized to CRLF, ``Bcc`` removed (as
every MTA does), a ``Message-ID`` (``<random@sending-domain>``) and a ``Date`` added when
missing, so the Message-ID is stable across retries and known to bounce matching. DKIM signing
happens at send time (the key may rotate while mail waits).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from analytics.services.events import EventInput, record_events
from config.metrics import DELIVERIES, OUTBOUND_SUBMITTED
from mailcore.mime import decode_header_value
from mailcore.models import Domain, OutboundMessage
from mailcore.services.groupcommit import GroupCommitter
from mailcore.services.outbound.dispatch import request_dispatch
from mailcore.services.outbound.local import deliver_local_now
from mailcore.services.outbound.smtp_client import normalize_line_endings
from mailcore.services.outbound.verp import is_bounce_local_part
from mailcore.services.recipients import normalize_address

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 1000
_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9_.-]+$")


class SubmissionError(ValueError):
    """The message was refused; nothing was stored. ``code`` is machine-readable."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class PreparedRaw:
    data: bytes
    message_id: str
    subject: str


def submit_outbound(
    *,
    organization_id: int,
    mail_from: str,
    recipients: Sequence[str],
    raw: bytes,
    source: str,
    sending_domain: str | None = None,
    tags: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
    send_at: datetime | None = None,
    track_opens: bool | None = None,
    track_clicks: bool | None = None,
    idempotency_key: str = "",
    mailbox_id: int | None = None,
) -> OutboundMessage:
    """Queue ``raw`` for ``recipients``; returns the stored message (an existing one for a
    repeated ``idempotency_key``). Raises :class:`SubmissionError` and stores nothing when the
    input is refused. The caller may hold a transaction: then everything, including the
    wake-up and local delivery, happens when the caller commits.
    """
    if source not in OutboundMessage.Source.values:
        raise SubmissionError(f"unknown source {source!r}")
    mail_from = normalize_address(mail_from)
    if not _ADDRESS.match(mail_from):
        raise SubmissionError(f"invalid sender address {mail_from!r}", "invalid_sender")
    addresses = list(dict.fromkeys(normalize_address(address) for address in recipients))
    if not addresses:
        raise SubmissionError("no recipients", "no_recipients")
    if len(addresses) > MAX_RECIPIENTS:
        raise SubmissionError(f"more than {MAX_RECIPIENTS} recipients", "too_many_recipients")
    bad = [address for address in addresses if not _ADDRESS.match(address)]
    if bad:
        raise SubmissionError(f"invalid recipient address {bad[0]!r}", "invalid_recipient")
    if len(raw) > settings.MAILROOM_MAX_MESSAGE_SIZE:
        raise SubmissionError("message too large", "too_large")
    domain_name = (sending_domain or mail_from.rpartition("@")[2]).strip().lower()
    domain_id = _sending_domain_id(organization_id, domain_name)
    if domain_id is None:
        raise SubmissionError(
            f"{domain_name!r} is not a sending domain of this organization", "unknown_domain"
        )
    if idempotency_key:
        existing = _existing(organization_id, idempotency_key)
        if existing is not None:
            return existing
    now = timezone.now()
    prepared = prepare_raw(raw, domain_name, now)
    is_local = {a: _is_local(a) for a in addresses}
    due = max(send_at, now) if send_at else now
    message = OutboundMessage(
        organization_id=organization_id,
        domain_id=domain_id,
        mailbox_id=mailbox_id,
        source=source,
        mail_from=mail_from,
        message_id=prepared.message_id,
        subject=prepared.subject,
        size=len(prepared.data),
        tags=[str(tag)[:128] for tag in tags],
        metadata=metadata or {},
        track_opens=track_opens,
        track_clicks=track_clicks,
        idempotency_key=idempotency_key,
        send_at=send_at,
        created_at=now,
    )
    pending = _Pending(message, prepared.data, addresses, is_local, due, domain_name)
    if connection.in_atomic_block or not settings.MAILROOM_SUBMIT_GROUP_COMMIT:
        return _write_one(pending)
    return _committer.submit(pending)


@dataclass(slots=True)
class _Pending:
    """A validated submission waiting to be written."""

    message: OutboundMessage
    data: bytes
    addresses: list[str]
    is_local: dict[str, bool]
    due: datetime
    domain_name: str


def _write_one(pending: _Pending) -> OutboundMessage:
    """Write one submission in its own transaction (or the caller's); a repeated idempotency
    key that lost a race returns the message that won."""
    message = pending.message
    try:
        with transaction.atomic():
            _write([pending])
    except IntegrityError:
        existing = (
            _existing(message.organization_id, message.idempotency_key)
            if message.idempotency_key
            else None
        )
        if existing is None:
            raise
        return existing
    return message


def _write_batch(batch: Sequence[_Pending]) -> list[OutboundMessage | BaseException]:
    """The group committer's writer: the whole batch in one transaction; if that fails (a
    repeated idempotency key, a bad row), each submission again on its own, so one bad
    submission never fails the others."""
    if len(batch) > 1:
        try:
            with transaction.atomic():
                _write(batch)
            return [pending.message for pending in batch]
        except Exception:  # noqa: BLE001 - retried one by one below, where each error is its own
            for pending in batch:
                pending.message.id = None
                pending.message._state.adding = True
    results: list[OutboundMessage | BaseException] = []
    for pending in batch:
        try:
            results.append(_write_one(pending))
        except Exception as exc:  # noqa: BLE001 - goes back to the caller that submitted it
            results.append(exc)
    return results


_committer: GroupCommitter[_Pending, OutboundMessage] = GroupCommitter(
    _write_batch, max_batch=64, name="outbound-submit"
)


def _write(batch: Sequence[_Pending]) -> None:
    """Insert rows and events for ``batch`` inside the current transaction; wake-ups, local
    copies and logs run after the commit."""
    events: list[EventInput] = []
    wake_dispatcher = False
    with connection.cursor() as cursor:
        for pending in batch:
            message = pending.message
            rows = _insert(
                cursor, message, pending.data, pending.addresses, pending.is_local, pending.due
            )
            suppressed = {recipient for _, recipient, status in rows if status == "suppressed"}
            events.extend(
                EventInput(
                    organization_id=message.organization_id,
                    type="suppressed" if recipient in suppressed else "sent",
                    message_id=message.id,
                    recipient=recipient,
                    tags=message.tags,
                    payload={
                        "delivery_id": delivery_id,
                        "message_id": message.message_id,
                        "domain": pending.domain_name,
                        "source": message.source,
                        "from": message.mail_from,
                        **({"stage": "submit"} if recipient in suppressed else {}),
                    },
                    occurred_at=message.created_at,
                )
                for delivery_id, recipient, _ in rows
            )
            queued = [(i, r) for i, r, status in rows if status == "queued"]
            transaction.on_commit(partial(_log_accepted, message, len(rows), len(suppressed)))
            if pending.due <= message.created_at:
                local_ids = [i for i, r in queued if pending.is_local[r]]
                if local_ids:
                    transaction.on_commit(partial(deliver_local_now, local_ids))
                if any(not pending.is_local[r] for _, r in queued):
                    wake_dispatcher = True
    record_events(events)
    if wake_dispatcher:
        request_dispatch()


def _log_accepted(message: OutboundMessage, recipients: int, suppressed: int) -> None:
    OUTBOUND_SUBMITTED.labels(message.source).inc()
    if suppressed:
        DELIVERIES.labels("suppressed").inc(suppressed)
    log.info(
        "queued %s <%s> for %d recipient(s)",
        message.id,
        message.message_id,
        recipients,
        extra={
            "outbound_id": message.id,
            "message_id": message.message_id,
            "source": message.source,
            "mail_from": message.mail_from,
            "recipients": recipients,
            "suppressed": suppressed,
            "size": message.size,
        },
    )


# Sending domains are looked up on every submission; an edit applies within this many seconds.
DOMAIN_CACHE_SECONDS = 10.0
_domain_cache: dict[tuple[int, str], tuple[float, int]] = {}


def _sending_domain_id(organization_id: int, name: str) -> int | None:
    key = (organization_id, name)
    cached = _domain_cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    domain_id = (
        Domain.objects.filter(organization_id=organization_id, name=name, is_active=True)
        .values_list("id", flat=True)
        .first()
    )
    if domain_id is not None:
        if len(_domain_cache) > 10_000:
            _domain_cache.clear()
        _domain_cache[key] = (time.monotonic() + DOMAIN_CACHE_SECONDS, domain_id)
    return domain_id


_local_domains: dict[str, tuple[float, bool]] = {}


def _is_local(address: str) -> bool:
    """Whether ``address`` is in one of our domains (then it is stored, not sent over SMTP;
    an unknown local user bounces at once). Domain answers are cached like sending domains."""
    local_part, _, name = address.rpartition("@")
    cached = _local_domains.get(name)
    if cached is None or cached[0] < time.monotonic():
        is_ours = Domain.objects.filter(name=name, is_active=True).exists()
        if len(_local_domains) > 10_000:
            _local_domains.clear()
        cached = _local_domains[name] = (time.monotonic() + DOMAIN_CACHE_SECONDS, is_ours)
    return cached[1] and not is_bounce_local_part(local_part)


# The blob, the message and its deliveries in one statement: submission is the hot path of
# every send, and one round trip instead of three is most of its cost.
_INSERT_SQL = """
WITH b AS (
    INSERT INTO mailcore_blob (organization_id, sha256, size, data, created_at)
    VALUES (%(org)s, %(sha256)s, %(size)s, %(data)s, %(now)s) RETURNING id
), m AS (
    INSERT INTO mailcore_outboundmessage (organization_id, domain_id, mailbox_id, blob_id,
        source, mail_from, message_id, subject, size, tags, metadata, track_opens, track_clicks,
        idempotency_key, send_at, created_at)
    SELECT %(org)s, %(domain)s, %(mailbox)s, b.id, %(source)s, %(mail_from)s, %(message_id)s,
        %(subject)s, %(size)s, %(tags)s::varchar[], %(metadata)s::jsonb, %(track_opens)s,
        %(track_clicks)s, %(idempotency_key)s, %(send_at)s, %(now)s
    FROM b RETURNING id, blob_id
), d AS (
    INSERT INTO mailcore_delivery (organization_id, message_id, recipient, recipient_domain,
        is_local, status, attempt_count, next_attempt_at, expires_at, lease_token,
        enhanced_status, reply, reason, created_at, updated_at)
    SELECT %(org)s, m.id, r.recipient, r.domain, r.is_local,
        CASE WHEN s.id IS NULL THEN 'queued' ELSE 'suppressed' END, 0, %(due)s, %(expires)s,
        '', '', CASE WHEN s.id IS NULL THEN '' ELSE %(note)s END, '', %(now)s, %(now)s
    FROM m, unnest(%(recipients)s::text[], %(domains)s::text[], %(locals)s::boolean[])
         WITH ORDINALITY AS r(recipient, domain, is_local, n)
    LEFT JOIN mailcore_suppression s ON s.domain_id = %(domain)s AND s.address = r.recipient
    ORDER BY r.n
    RETURNING id, recipient, status
)
SELECT m.id, m.blob_id, d.id, d.recipient, d.status FROM m, d ORDER BY d.id
"""


def _insert(
    cursor: CursorWrapper,
    message: OutboundMessage,
    data: bytes,
    addresses: list[str],
    is_local: dict[str, bool],
    due: datetime,
) -> list[tuple[int, str, str]]:
    """Insert the rows (suppressed recipients as ``suppressed``); fills in ``message``'s ids;
    returns (delivery id, recipient, status) triples."""
    cursor.execute(
        _INSERT_SQL,
        {
            "org": message.organization_id,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "data": data,
            "now": message.created_at,
            "domain": message.domain_id,
            "mailbox": message.mailbox_id,
            "source": message.source,
            "mail_from": message.mail_from,
            "message_id": message.message_id,
            "subject": message.subject,
            "tags": message.tags,
            "metadata": json.dumps(message.metadata),
            "track_opens": message.track_opens,
            "track_clicks": message.track_clicks,
            "idempotency_key": message.idempotency_key,
            "send_at": message.send_at,
            "due": due,
            "expires": due + timedelta(seconds=settings.MAILROOM_MAX_RETRY_AGE),
            "recipients": addresses,
            "domains": [a.rpartition("@")[2] for a in addresses],
            "locals": [is_local[a] for a in addresses],
            "note": "Recipient is on the suppression list",
        },
    )
    rows = cursor.fetchall()
    message.id, message.blob_id = rows[0][0], rows[0][1]
    message._state.adding = False
    message._state.db = cursor.db.alias
    return [(row[2], row[3], row[4]) for row in rows]


def _existing(organization_id: int, idempotency_key: str) -> OutboundMessage | None:
    return OutboundMessage.objects.filter(
        organization_id=organization_id, idempotency_key=idempotency_key
    ).first()


def prepare_raw(raw: bytes, domain: str, now: datetime) -> PreparedRaw:
    """CRLF line endings, no Bcc, a Message-ID and a Date (see the module docstring)."""
    data = normalize_line_endings(raw)
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator and b":" not in head.split(b"\r\n", 1)[0]:
        head, body = b"", data  # no header block at all
    fields = _split_fields(head)
    kept = [field for field in fields if _name(field) != b"bcc"]
    names = {_name(field) for field in kept}
    added: list[bytes] = []
    message_id = ""
    for field in kept:
        if _name(field) == b"message-id":
            message_id = _message_id_of(field)
    if not message_id:
        message_id = f"{secrets.token_hex(12)}@{domain}"
        added.append(f"Message-ID: <{message_id}>".encode("ascii"))
    if b"date" not in names:
        added.append(f"Date: {format_datetime(now)}".encode("ascii"))
    subject = next((_value(field) for field in kept if _name(field) == b"subject"), "")
    head = b"\r\n".join([*added, *kept])
    return PreparedRaw(head + b"\r\n\r\n" + body, message_id[:255], subject[:1000])


def _split_fields(head: bytes) -> list[bytes]:
    fields: list[bytes] = []
    for line in head.split(b"\r\n") if head else []:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    return fields


def _name(field: bytes) -> bytes:
    return field.split(b":", 1)[0].strip().lower()


def _value(field: bytes) -> str:
    value = field.split(b":", 1)[1] if b":" in field else b""
    text = value.decode("utf-8", "replace").replace("\r\n", "").strip()
    return decode_header_value(text)


def _message_id_of(field: bytes) -> str:
    value = _value(field)
    match = re.search(r"<([^<>\s]+)>", value)
    return match.group(1) if match else (value.split()[0].strip("<>") if value.split() else "")
