"""A real SMTP peer on 127.0.0.1 for outbound tests (aiosmtpd on a thread).

What it does is decided by the recipient's local part, so one message can mix outcomes:
``reject*`` gets 550 5.1.1 at RCPT, ``defer*`` 451 at RCPT, ``drop*`` has the connection closed
after its DATA (no final reply), ``slow*`` waits ``slow_seconds`` before the final reply. With
``data_reply`` set, every DATA gets that reply instead of 250.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Transaction:
    mail_from: str
    recipients: list[str]
    data: bytes
    session_id: int
    is_tls: bool


@dataclass
class PeerHandler:
    transactions: list[Transaction] = field(default_factory=list)
    sessions: int = 0
    data_reply: str = ""
    slow_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:  # fmt: skip
        session.host_name = hostname
        if not hasattr(session, "mailroom_id"):
            with self.lock:
                self.sessions += 1
                session.mailroom_id = self.sessions
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("defer"):
            return "451 4.3.0 Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        locals_ = [address.split("@")[0].lower() for address in envelope.rcpt_tos]
        if any(local.startswith("slow") for local in locals_):
            await asyncio.sleep(self.slow_seconds)
        if any(local.startswith("drop") for local in locals_):
            server.transport.close()
            return "421 4.3.0 closing"
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.transactions.append(
                Transaction(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content),
                    getattr(session, "mailroom_id", 0),
                    session.ssl is not None,
                )
            )
        return "250 2.0.0 Ok: queued"

    def received(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return [(r, t.data) for t in self.transactions for r in t.recipients]


class Peer:
    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.handler = PeerHandler()
        self.port = free_port()
        kwargs: dict[str, Any] = {"decode_data": False}
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> Peer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"
