"""The SMTP protocol shell over aiosmtpd: limits, enhanced status codes and our DATA reader."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, syntax
from django.conf import settings

from config.metrics import (
    SMTP_CONNECTIONS_REFUSED,
    SMTP_MESSAGES_ACCEPTED,
    SMTP_MESSAGES_REFUSED,
    SMTP_SESSIONS,
    code_class,
)
from mailcore.smtp import faults
from mailcore.smtp.data import DataReader

log = logging.getLogger(__name__)

# aiosmtpd's fixed replies, given the enhanced status codes (RFC 3463) clients log and act on.
_REPLIES = {
    b"552 Error: message size exceeds fixed maximum message size": (
        b"552 5.3.4 Message size exceeds fixed maximum message size"
    ),
    b"503 Error: need RCPT command": b"503 5.5.1 Error: need RCPT command",
    b"503 Error: need MAIL command": b"503 5.5.1 Error: need MAIL command",
    b"503 Error: nested MAIL command": b"503 5.5.1 Error: nested MAIL command",
    b"500 Error: bad syntax": b"500 5.5.2 Error: bad syntax",
    b"221 Bye": b"221 2.0.0 Bye",
    b"250 OK": b"250 2.0.0 Ok",
}


def extend_ehlo(session: Any, hostname: str, responses: list[str]) -> list[str]:
    """The EHLO reply with the extensions aiosmtpd handles but does not advertise."""
    session.host_name = hostname
    return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250 HELP"]


class ConnectionLimits:
    """Process-wide connection counters shared by every session of one listener."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.per_ip: Counter[str] = Counter()
        self.total = 0
        self.is_draining = False
        self.in_transaction = 0  # sessions between 354 and their final reply
        self.sessions: set[MailroomSMTP] = set()

    def admit(self, ip: str) -> str | None:
        """Count the connection in, or return the reply that refuses it."""
        if self.is_draining:
            return "421 4.3.2 Service shutting down, try again later"
        if self.total >= self.max_total:
            return "421 4.7.0 Too many connections, try again later"
        if self.per_ip[ip] >= self.max_per_ip:
            return "421 4.7.0 Too many connections from your address, try again later"
        self.total += 1
        self.per_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self.total -= 1
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]


def junk_command_limits() -> dict[str, int]:
    """Per-connection budgets: commands that carry no mail (NOOP, VRFY, EXPN, HELP) are limited
    like Postfix's ``smtpd_junk_command_limit``, so a client cannot hold a connection slot
    forever by sending one every few seconds under the idle timeout; the 421 closes it. Mail
    commands stay unlimited (a connection may carry thousands of transactions)."""
    junk = settings.MAILROOM_SMTP_JUNK_COMMAND_LIMIT
    return {"NOOP": junk, "VRFY": junk, "EXPN": junk, "HELP": junk, "*": 2**31}


class MailroomSMTP(SMTP):
    service = "mx"  # the metrics label (docs/operations.md "Metrics")

    def __init__(
        self,
        handler: Any,
        *,
        limits: ConnectionLimits,
        data_timeout: float,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("command_call_limit", junk_command_limits())
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.data_timeout = data_timeout
        self._admitted_ip: str | None = None

    async def push(self, status: str | bytes) -> None:
        response = status.encode("utf-8") if isinstance(status, str) else status
        await super().push(_REPLIES.get(response, response))

    async def handle_exception(self, error: Exception) -> str:
        """An error no handler caught, most often the database or Redis going away mid-session.
        aiosmtpd would answer ``500`` with the exception's text: a permanent refusal (the
        client bounces the mail) and a leak. ``451`` makes the client try again."""
        log.error("%r SMTP session error", self.session and self.session.peer, exc_info=error)
        return "451 4.3.0 Temporary server error, try again later"

    async def _handle_client(self) -> None:
        peer = self.session.peer if self.session else None
        ip = peer[0] if isinstance(peer, tuple) else "unix"
        refusal = self.limits.admit(ip)
        if refusal is not None:
            SMTP_CONNECTIONS_REFUSED.labels(self.service).inc()
            await self.push(refusal)
            if self.transport is not None:
                self.transport.close()
            return
        self._admitted_ip = ip
        SMTP_SESSIONS.labels(self.service).inc()
        self.limits.sessions.add(self)
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        if self._admitted_ip is not None:
            self.limits.release(self._admitted_ip)
            self._admitted_ip = None
        self.limits.sessions.discard(self)
        super().connection_lost(error)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.limits.is_draining:
            # Shutting down: finish what is in flight, start nothing new (RFC 5321 4.2.3).
            await self.push("421 4.3.2 Service shutting down, try again later")
            return
        await super().smtp_MAIL(arg)

    def close_idle(self) -> None:
        """Tell an idle session we are going away and close it (graceful shutdown)."""
        if self.transport is not None and not self.is_in_transaction:
            self._writer.write(b"421 4.3.2 Service shutting down, try again later\r\n")
            self.transport.close()

    is_in_transaction = False

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.is_in_transaction = True
        self.limits.in_transaction += 1
        try:
            await self._receive_data(arg)
        finally:
            self.is_in_transaction = False
            self.limits.in_transaction -= 1

    async def _receive_data(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = DataReader(self.data_size_limit or 2**31)
        deadline = time.monotonic() + self.data_timeout
        is_first_chunk = True
        while True:
            remaining = deadline - time.monotonic()
            try:
                chunk = await asyncio.wait_for(self._reader.read(65536), timeout=max(remaining, 0))
            except TimeoutError:
                self._count_data_reply("421")
                await self.push("421 4.4.2 Timeout exceeded during DATA, closing connection")
                if self.transport is not None:
                    self.transport.close()
                return
            if not chunk:  # EOF mid-DATA: nothing was accepted, nothing is stored.
                return
            self._reset_timeout()
            result = reader.feed(chunk)
            if is_first_chunk:
                is_first_chunk = False
                await faults.pause_async("mid_data")
            if result is not None:
                break
        if result.remainder:
            # Pipelined commands after the terminator go back for the command loop.
            self._reader._buffer[0:0] = result.remainder  # type: ignore[attr-defined]
        if result.is_too_big:
            self._set_post_data_state()
            self._count_data_reply("552")
            await self.push("552 5.3.4 Message size exceeds fixed maximum message size")
            return
        if result.has_bare_line_ending:
            self._set_post_data_state()
            self._count_data_reply("550")
            await self.push("550 5.6.0 Message refused: bare CR or LF; lines must end with CRLF")
            return
        self.envelope.content = result.content
        self.envelope.original_content = result.content
        status = await self.event_handler.handle_DATA(self, self.session, self.envelope)
        self._set_post_data_state()
        self._count_data_reply(status)
        await self.push(status)
        await faults.pause_async("after_reply")

    def _count_data_reply(self, reply: str) -> None:
        if reply.startswith("2"):
            SMTP_MESSAGES_ACCEPTED.labels(self.service).inc()
        else:
            SMTP_MESSAGES_REFUSED.labels(self.service, code_class(reply)).inc()


class SubmissionSMTP(MailroomSMTP):
    """Authenticated submission. aiosmtpd checks credentials synchronously on the event loop;
    here the built-in PLAIN/LOGIN parsing only collects them and the handler's async
    ``check_auth`` verifies them on a worker thread (argon2 is deliberately slow)."""

    service = "submission"

    _credentials: tuple[str, Any] | None = None

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        self._credentials = (mechanism, auth_data)
        return AuthResult(success=False, handled=False)

    async def _checked(self, result: AuthResult) -> AuthResult:
        credentials, self._credentials = self._credentials, None
        if credentials is None:  # decoding failed; aiosmtpd already answered
            return result
        return await self.event_handler.check_auth(self, self.session, *credentials)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._checked(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._checked(await super().auth_LOGIN(_, args))
