"""The receiver's decisions per SMTP command; storage is delegated to the ingest queue."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.smtp import Envelope, Session
from django.conf import settings
from django.db import close_old_connections

from config.metrics import count_if_database_error
from mailcore.services.inbound import InboundItem, Status
from mailcore.services.outbound.bounces import process_bounce_for_recipients
from mailcore.services.recipients import Resolution, Verdict, normalize_address, resolve_recipient
from mailcore.smtp.protocol import extend_ehlo
from mailcore.smtp.queue import IngestQueue

log = logging.getLogger(__name__)


def _resolve_on_thread(address: str) -> Resolution:
    close_old_connections()
    return resolve_recipient(address)


def _process_bounce_on_thread(data: bytes, addresses: list[str]) -> None:
    close_old_connections()
    process_bounce_for_recipients(data, addresses)


class InboundHandler:
    """aiosmtpd handler for the MX receiver (mail for local domains only; no relaying)."""

    def __init__(self, queue: IngestQueue, *, max_recipients: int) -> None:
        self.queue = queue
        self.max_recipients = max_recipients
        self.lookup_threads = 4
        self.lookups = ThreadPoolExecutor(
            max_workers=self.lookup_threads, thread_name_prefix="rcpt"
        )

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        return extend_ehlo(session, hostname, responses)

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.mailroom_targets = {}  # type: ignore[attr-defined]
        envelope.mailroom_bounces = []  # type: ignore[attr-defined]
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Error: too many recipients"
        address = normalize_address(address)
        loop = asyncio.get_running_loop()
        try:
            resolution = await loop.run_in_executor(self.lookups, _resolve_on_thread, address)
        except Exception as exc:
            count_if_database_error("smtp_lookup", exc)
            log.exception("recipient lookup failed for %s", address)
            return "451 4.3.0 Temporary lookup failure, try again later"
        if resolution.verdict is Verdict.BOUNCE:  # outbound bounce intake (issue 4)
            envelope.rcpt_tos.append(address)
            envelope.mailroom_bounces.append(address)  # type: ignore[attr-defined]
            return "250 2.1.5 Ok"
        if resolution.verdict is Verdict.FOREIGN_DOMAIN:
            return f"550 5.7.1 <{address}>: Relay access denied"
        if resolution.verdict is Verdict.UNKNOWN_USER:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        declared = _declared_size(envelope.mail_options)
        for target in resolution.targets:
            if target.quota_bytes and declared > target.quota_bytes:
                return f"552 5.2.2 <{address}>: Mailbox full: message exceeds quota"
            if not target.has_room_for(max(declared, 1)):
                return f"452 4.2.2 <{address}>: Mailbox full, try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        targets: dict[int, Any] = envelope.mailroom_targets  # type: ignore[attr-defined]
        for target in resolution.targets:
            targets.setdefault(target.mailbox_id, target)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        bounces: list[str] = envelope.mailroom_bounces  # type: ignore[attr-defined]
        if bounces:
            loop = asyncio.get_running_loop()
            content: bytes = envelope.content  # type: ignore[assignment]
            try:
                await loop.run_in_executor(
                    self.lookups, _process_bounce_on_thread, content, bounces
                )
            except Exception:
                log.exception("processing a bounce failed")
                return "451 4.3.0 Temporary server error, try again later"
            if len(bounces) == len(envelope.rcpt_tos):
                return "250 2.0.0 Ok: bounce processed"
        peer = session.peer
        item = InboundItem(
            mail_from=envelope.mail_from or "",
            recipients=tuple(r for r in envelope.rcpt_tos if r not in bounces),
            targets=tuple(envelope.mailroom_targets.values()),  # type: ignore[attr-defined]
            data=envelope.content,  # type: ignore[arg-type]
            peer_ip=peer[0] if isinstance(peer, tuple) else str(peer),
            helo=session.host_name or "",
            is_tls=session.ssl is not None,
        )
        outcome = await self.queue.submit(item)
        if outcome.status is Status.STORED:
            log.info(
                "accepted %s from <%s> for %d recipient(s)",
                outcome.queue_id,
                item.mail_from,
                len(item.recipients),
                extra={
                    "queue_id": outcome.queue_id,
                    "message_id": outcome.header_message_id,
                    "mail_from": item.mail_from,
                    "recipients": list(item.recipients),
                    "size": len(item.data),
                    "peer": item.peer_ip,
                    "duplicates": outcome.duplicate_count,
                },
            )
            return f"250 2.0.0 Ok: queued as {outcome.queue_id}"
        log.warning(
            "refused a message from <%s>: %s",
            item.mail_from,
            outcome.status.value,
            extra={
                "queue_id": outcome.queue_id,
                "message_id": outcome.header_message_id,
                "status": outcome.status.value,
            },
        )
        if outcome.status is Status.OVER_QUOTA:
            return "452 4.2.2 Mailbox full, try again later"
        if outcome.status is Status.TOO_BIG_FOR_QUOTA:
            return "552 5.2.2 Mailbox full: message exceeds the mailbox quota"
        return "451 4.3.0 Temporary server error, try again later"


def _declared_size(options: list[str]) -> int:
    for option in options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


def default_handler(queue: IngestQueue) -> InboundHandler:
    return InboundHandler(queue, max_recipients=settings.MAILROOM_MAX_RECIPIENTS)
