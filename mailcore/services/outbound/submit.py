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
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.services.events import EventInput, record_events
from mailcore.mime import decode_header_value
from mailcore.models import Blob, Delivery, Domain, OutboundMessage
from mailcore.services.outbound.dispatch import request_dispatch
from mailcore.services.outbound.local import deliver_local_now
from mailcore.services.outbound.smtp_client import normalize_line_endings
from mailcore.services.outbound.suppression import suppressed_among
from mailcore.services.recipients import Verdict, normalize_address, resolve_recipient

MAX_RECIPIENTS = 1000
_ADDRESS = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9_.-]+$")
_LOCAL_VERDICTS = (Verdict.LOCAL, Verdict.UNKNOWN_USER)


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
    domain = Domain.objects.filter(
        organization_id=organization_id, name=domain_name, is_active=True
    ).first()
    if domain is None:
        raise SubmissionError(
            f"{domain_name!r} is not a sending domain of this organization", "unknown_domain"
        )
    if idempotency_key:
        existing = _existing(organization_id, idempotency_key)
        if existing is not None:
            return existing
    now = timezone.now()
    prepared = prepare_raw(raw, domain.name, now)
    suppressed = suppressed_among(domain.id, addresses)
    is_local = {a: resolve_recipient(a).verdict in _LOCAL_VERDICTS for a in addresses}
    due = max(send_at, now) if send_at else now
    expires = due + timedelta(seconds=settings.MAILROOM_MAX_RETRY_AGE)
    try:
        with transaction.atomic():
            blob = Blob.objects.create(
                organization_id=organization_id,
                sha256=hashlib.sha256(prepared.data).hexdigest(),
                size=len(prepared.data),
                data=prepared.data,
                created_at=now,
            )
            message = OutboundMessage.objects.create(
                organization_id=organization_id,
                domain=domain,
                mailbox_id=mailbox_id,
                blob=blob,
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
            deliveries = Delivery.objects.bulk_create(
                Delivery(
                    organization_id=organization_id,
                    message=message,
                    recipient=address,
                    recipient_domain=address.rpartition("@")[2],
                    is_local=is_local[address],
                    status="suppressed" if address in suppressed else "queued",
                    reply="Recipient is on the suppression list" if address in suppressed else "",
                    next_attempt_at=due,
                    expires_at=expires,
                    created_at=now,
                    updated_at=now,
                )
                for address in addresses
            )
            record_events(
                EventInput(
                    organization_id=organization_id,
                    type="suppressed" if delivery.status == "suppressed" else "sent",
                    message_id=message.id,
                    recipient=delivery.recipient,
                    tags=message.tags,
                    payload={
                        "delivery_id": delivery.id,
                        "message_id": message.message_id,
                        "domain": domain.name,
                        "source": source,
                        "from": mail_from,
                        **({"stage": "submit"} if delivery.status == "suppressed" else {}),
                    },
                    occurred_at=now,
                )
                for delivery in deliveries
            )
            queued = [d for d in deliveries if d.status == "queued"]
            if due <= now:
                local_ids = [d.id for d in queued if d.is_local]
                if local_ids:
                    transaction.on_commit(partial(deliver_local_now, local_ids))
                if any(not d.is_local for d in queued):
                    request_dispatch()
    except IntegrityError:
        existing = _existing(organization_id, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing
    return message


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
