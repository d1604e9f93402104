"""Authenticated submission (port 587 style): mail clients and apps send through Mailroom.

AUTH PLAIN/LOGIN is offered only after STARTTLS, unless
``MAILROOM_SUBMISSION_ALLOW_INSECURE_LOOPBACK`` is set, and then only to loopback clients.
Every accepted message goes to :func:`mailcore.services.outbound.submit_outbound` (the one
outbound path); the ``250`` comes after that transaction commits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.db import close_old_connections
from django.db.models import Q

from config.metrics import count_if_database_error
from mailcore.models import Alias, Mailbox, User
from mailcore.services.recipients import normalize_address
from mailcore.smtp.protocol import extend_ehlo

log = logging.getLogger(__name__)

FAILURE_LIMIT = 10
FAILURE_WINDOW_SECONDS = 15 * 60


def _is_loopback(peer: Any) -> bool:
    try:
        return ipaddress.ip_address(peer[0]).is_loopback
    except (TypeError, ValueError, IndexError):
        return False


def _check_credentials(username: str, password: str, ip: str) -> User | None:
    close_old_connections()
    key = f"smtp-auth-failures:{ip}"
    if (cache.get(key) or 0) >= FAILURE_LIMIT:
        return None
    user = authenticate(username=username.strip().lower(), password=password)
    if user is None or not user.is_active:
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=FAILURE_WINDOW_SECONDS)
        return None
    return user


def sender_addresses(user: User) -> set[str]:
    """Addresses ``user`` may put in MAIL FROM: their mailboxes (own and shared with send
    rights) and the aliases that deliver to them."""
    mailboxes = Mailbox.objects.filter(
        Q(user=user) | Q(grants__user=user, grants__can_send=True), is_active=True
    ).distinct()
    addresses = set(mailboxes.values_list("address", flat=True))
    for local_part, domain in Alias.objects.filter(
        mailboxes__in=mailboxes, is_active=True
    ).values_list("local_part", "domain__name"):
        if local_part:
            addresses.add(f"{local_part}@{domain}")
    return addresses


def _submit(user_id: int, mail_from: str, recipients: list[str], raw: bytes) -> str:
    close_old_connections()
    from mailcore.services.outbound import submit_outbound

    mailbox = (
        Mailbox.objects.filter(
            Q(user_id=user_id) | Q(grants__user_id=user_id), address=mail_from
        ).first()
        or Mailbox.objects.filter(user_id=user_id).first()
    )
    if mailbox is None:
        raise PermissionError("this login has no mailbox")
    message = submit_outbound(
        organization_id=mailbox.organization_id,
        mail_from=mail_from,
        recipients=recipients,
        raw=raw,
        source="smtp",
        mailbox_id=mailbox.id,
    )
    return str(message.id)


class SubmissionHandler:
    """aiosmtpd handler and authenticator for authenticated submission."""

    def __init__(self, *, max_recipients: int, allow_insecure_loopback: bool) -> None:
        self.max_recipients = max_recipients
        self.allow_insecure_loopback = allow_insecure_loopback
        self.threads = 4
        self.executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="submit")

    async def check_auth(
        self, server: Any, session: Session, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if session.ssl is None and not (
            self.allow_insecure_loopback and _is_loopback(session.peer)
        ):
            await server.push("538 5.7.11 Encryption required for requested authentication")
            return AuthResult(success=False, handled=True)
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ip = session.peer[0] if isinstance(session.peer, tuple) else "unix"
        user = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            _check_credentials,
            auth_data.login.decode("utf-8", "replace"),
            auth_data.password.decode("utf-8", "replace"),
            ip,
        )
        if user is None:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user)

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        return extend_ehlo(session, hostname, responses)

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # aiosmtpd leaves auth_data untyped (None until AUTH); check_auth stored the User there.
        user = cast(User, session.auth_data)
        address = normalize_address(address)
        loop = asyncio.get_running_loop()
        allowed = await loop.run_in_executor(self.executor, _allowed_senders, user)
        if address not in allowed:
            return f"553 5.7.1 <{address}>: Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Error: too many recipients"
        address = normalize_address(address)
        local_part, _, domain = address.rpartition("@")
        if not local_part or "." not in domain:
            return f"553 5.1.3 <{address}>: Recipient address syntax error"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        from mailcore.services.outbound import SubmissionError

        loop = asyncio.get_running_loop()
        try:
            queue_id = await loop.run_in_executor(
                self.executor,
                _submit,
                cast(User, session.auth_data).pk,
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                cast(bytes, envelope.content),  # decode_data is off: the content is bytes
            )
        except SubmissionError as exc:
            return f"554 5.6.0 Message refused: {exc}"
        except Exception as exc:
            count_if_database_error("submission", exc)
            log.exception("submission failed")
            return "451 4.3.0 Temporary server error, try again later"
        return f"250 2.0.0 Ok: queued as {queue_id}"


def _allowed_senders(user: User) -> set[str]:
    close_old_connections()
    return sender_addresses(user)


def default_submission_handler() -> SubmissionHandler:
    return SubmissionHandler(
        max_recipients=settings.MAILROOM_MAX_RECIPIENTS,
        allow_insecure_loopback=settings.MAILROOM_SUBMISSION_ALLOW_INSECURE_LOOPBACK,
    )
