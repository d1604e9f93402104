"""A small asyncio SMTP client for delivery: one object per connection, many transactions.

Why not smtplib: the dispatcher keeps dozens of connections busy from one event loop, and with
PIPELINING (RFC 2920) a transaction costs two round trips (MAIL+RCPT...+DATA in one write, then
the body) instead of three plus one per recipient. What smtplib would do for us is done here:
CRLF normalization (a bare LF or CR becomes CRLF), dot-stuffing, EHLO with HELO fallback,
opportunistic STARTTLS (RFC 7435: encrypt when offered, do not verify, never fall back to
plain text on the same connection), SIZE/8BITMIME/SMTPUTF8 parameters.

Every failure to talk (refused, reset, timeout, garbage) raises :class:`SmtpConnectionError`;
if it happens after the final dot was written, the peer may have accepted the message: the
caller retries it anyway (at-least-once), the only way mail is delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass, field

_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\s*")


class SmtpConnectionError(Exception):
    """The conversation broke down; nothing more can be sent on this connection."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str

    @property
    def enhanced_status(self) -> str:
        match = _ENHANCED.match(self.text)
        return match.group(1) if match else ""

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(slots=True)
class TransactionResult:
    """Per recipient, the reply that decided it (RCPT's when refused, else the final one)."""

    replies: dict[str, Reply] = field(default_factory=dict)


def normalize_line_endings(data: bytes) -> bytes:
    if b"\r" in data or b"\n" in data:
        data = _LINE_ENDINGS.sub(b"\r\n", data)
    return data


def dot_stuff(data: bytes) -> bytes:
    """CRLF-normalize, dot-stuff and terminate a message for the DATA phase."""
    data = normalize_line_endings(data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def _opportunistic_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class SmtpConnection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, timeout: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host
        self.timeout = timeout
        self.extensions: dict[str, str] = {}
        self.is_tls = False
        self.is_broken = False
        self.transactions = 0

    @classmethod
    async def open(
        cls, host: str, port: int, *, helo: str, timeout: float, use_tls: bool = True
    ) -> SmtpConnection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 20), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise SmtpConnectionError(f"connect to {host}:{port} failed: {exc!r}") from exc
        peer = writer.get_extra_info("peername")
        name = f"{host}[{peer[0]}]:{port}" if peer else f"{host}:{port}"
        connection = cls(reader, writer, name, timeout)
        try:
            greeting = await connection._reply()
            if greeting.code != 220:
                raise SmtpConnectionError(f"{name} greeted with {greeting}")
            await connection._hello(helo)
            if use_tls and "STARTTLS" in connection.extensions:
                reply = await connection.command("STARTTLS")
                if reply.code == 220:
                    await asyncio.wait_for(
                        writer.start_tls(_opportunistic_tls(), server_hostname=host), timeout
                    )
                    connection.is_tls = True
                    await connection._hello(helo)
        except SmtpConnectionError:
            connection.abort()
            raise
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            connection.abort()
            raise SmtpConnectionError(f"{name}: {exc!r}") from exc
        return connection

    async def _hello(self, helo: str) -> None:
        reply = await self.command(f"EHLO {helo}")
        if reply.code == 250:
            self.extensions = {}
            for line in reply.text.split("\n")[1:]:
                keyword, _, value = line.strip().partition(" ")
                self.extensions[keyword.upper()] = value
            return
        reply = await self.command(f"HELO {helo}")
        if reply.code != 250:
            raise SmtpConnectionError(f"{self.host} refused HELO: {reply}")
        self.extensions = {}

    async def _reply(self) -> Reply:
        lines: list[str] = []
        while True:
            try:
                # asyncio.timeout, not wait_for: no task per line on the hot path.
                async with asyncio.timeout(self.timeout):
                    line = await self.reader.readline()
            except (OSError, TimeoutError, asyncio.LimitOverrunError, ValueError) as exc:
                self.is_broken = True
                raise SmtpConnectionError(f"{self.host}: no reply ({exc!r})") from exc
            if not line:
                self.is_broken = True
                raise SmtpConnectionError(f"{self.host} closed the connection")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) < 3 or not text[:3].isdigit():
                self.is_broken = True
                raise SmtpConnectionError(f"{self.host} sent a malformed reply: {text[:200]!r}")
            lines.append(text[4:])
            if len(text) == 3 or text[3] != "-":
                return Reply(int(text[:3]), "\n".join(lines))

    async def _write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            if self.writer.transport.get_write_buffer_size() > 65536:
                async with asyncio.timeout(self.timeout):
                    await self.writer.drain()
            elif self.writer.transport.is_closing():
                raise ConnectionResetError("connection closed")
        except (OSError, TimeoutError) as exc:
            self.is_broken = True
            raise SmtpConnectionError(f"{self.host}: write failed ({exc!r})") from exc

    async def command(self, line: str) -> Reply:
        await self._write(line.encode("utf-8") + b"\r\n")
        return await self._reply()

    def _mail_parameters(
        self, mail_from: str, recipients: list[str], size: int, data: bytes
    ) -> str:
        params = []
        if "SIZE" in self.extensions:
            params.append(f"SIZE={size}")
        if "8BITMIME" in self.extensions and not data.isascii():
            params.append("BODY=8BITMIME")
        if "SMTPUTF8" in self.extensions and not all(
            address.isascii() for address in [mail_from, *recipients]
        ):
            params.append("SMTPUTF8")
        return "".join(f" {param}" for param in params)

    async def send(self, mail_from: str, recipients: list[str], data: bytes) -> TransactionResult:
        """One transaction. Refusals come back as replies; only broken connections raise."""
        payload = dot_stuff(data)
        result = TransactionResult()
        limit = self.extensions.get("SIZE", "")
        if limit.isdigit() and int(limit) and len(payload) > int(limit):
            reply = Reply(552, f"5.3.4 Message size exceeds the peer's limit of {limit} bytes")
            return TransactionResult(dict.fromkeys(recipients, reply))
        self.transactions += 1
        parameters = self._mail_parameters(mail_from, recipients, len(payload), data)
        mail = f"MAIL FROM:<{mail_from}>{parameters}"
        rcpts = [f"RCPT TO:<{address}>" for address in recipients]
        if "PIPELINING" in self.extensions:
            await self._write("".join(f"{line}\r\n" for line in [mail, *rcpts, "DATA"]).encode())
            mail_reply = await self._reply()
            rcpt_replies = [await self._reply() for _ in rcpts]
            data_reply = await self._reply()
        else:
            mail_reply = await self.command(mail)
            rcpt_replies, data_reply = [], Reply(503, "5.5.1 not sent")
            if mail_reply.code == 250:
                rcpt_replies = [await self.command(line) for line in rcpts]
                if any(reply.code in (250, 251) for reply in rcpt_replies):
                    data_reply = await self.command("DATA")
        accepted = [
            address
            for address, reply in zip(recipients, rcpt_replies, strict=False)
            if mail_reply.code == 250 and reply.code in (250, 251)
        ]
        for index, address in enumerate(recipients):
            if mail_reply.code != 250:
                result.replies[address] = mail_reply
            elif index < len(rcpt_replies) and rcpt_replies[index].code not in (250, 251):
                result.replies[address] = rcpt_replies[index]
        if data_reply.code == 354:
            # With pipelining a server may say 354 although every RCPT failed: send an empty
            # body to end the transaction; its reply decides nothing.
            await self._write(payload if accepted else b".\r\n")
            final = await self._reply()
            for address in accepted:
                result.replies[address] = final
            if not accepted or final.code >= 400:
                await self._reset()
        else:
            for address in accepted:
                result.replies[address] = data_reply
            await self._reset()
        return result

    async def _reset(self) -> None:
        reply = await self.command("RSET")
        if reply.code != 250:
            self.is_broken = True

    async def quit(self) -> None:
        if not self.is_broken:
            with contextlib.suppress(SmtpConnectionError, TimeoutError):
                await asyncio.wait_for(self.command("QUIT"), min(self.timeout, 5))
        self.abort()

    def abort(self) -> None:
        self.is_broken = True
        self.writer.close()
