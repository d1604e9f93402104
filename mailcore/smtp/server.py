"""Running the receiver: a listener, its sessions and the ingest queue on one event loop."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from mailcore.smtp.handler import InboundHandler
from mailcore.smtp.protocol import ConnectionLimits, MailroomSMTP, SubmissionSMTP
from mailcore.smtp.queue import IngestQueue
from mailcore.smtp.submission import SubmissionHandler
from mailcore.smtp.threads import shutdown_with_connections

log = logging.getLogger(__name__)
loop_time = time.monotonic


@dataclass(slots=True)
class ReceiverConfig:
    host: str = field(default_factory=lambda: settings.MAILROOM_SMTP_HOST)
    port: int = field(default_factory=lambda: settings.MAILROOM_SMTP_PORT)
    hostname: str = field(default_factory=lambda: settings.MAILROOM_HOSTNAME)
    max_message_size: int = field(default_factory=lambda: settings.MAILROOM_MAX_MESSAGE_SIZE)
    max_recipients: int = field(default_factory=lambda: settings.MAILROOM_MAX_RECIPIENTS)
    max_connections: int = field(default_factory=lambda: settings.MAILROOM_SMTP_MAX_CONNECTIONS)
    max_connections_per_ip: int = field(
        default_factory=lambda: settings.MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP
    )
    command_timeout: float = field(default_factory=lambda: settings.MAILROOM_SMTP_COMMAND_TIMEOUT)
    data_timeout: float = field(default_factory=lambda: settings.MAILROOM_SMTP_DATA_TIMEOUT)
    tls_cert: str = field(default_factory=lambda: settings.MAILROOM_SMTP_TLS_CERT)
    tls_key: str = field(default_factory=lambda: settings.MAILROOM_SMTP_TLS_KEY)
    batch_size: int = field(default_factory=lambda: settings.MAILROOM_INGEST_BATCH_SIZE)
    writers: int = 2
    shutdown_grace: float = field(
        default_factory=lambda: settings.MAILROOM_SMTP_SHUTDOWN_GRACE_SECONDS
    )
    reuse_port: bool = field(default_factory=lambda: settings.MAILROOM_SMTP_REUSE_PORT)
    # Authenticated submission instead of MX: AUTH required, relaying for the account.
    submission: bool = False
    allow_insecure_loopback: bool = field(
        default_factory=lambda: settings.MAILROOM_SUBMISSION_ALLOW_INSECURE_LOOPBACK
    )


class Receiver:
    def __init__(self, config: ReceiverConfig | None = None) -> None:
        self.config = config or ReceiverConfig()
        self.limits = ConnectionLimits(
            self.config.max_connections, self.config.max_connections_per_ip
        )
        self.port = self.config.port
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def _tls_context(self) -> ssl.SSLContext | None:
        if not (self.config.tls_cert and self.config.tls_key):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    async def serve(self) -> None:
        """Listen until :meth:`request_stop`; then refuse new sessions and drain the queue."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        queue = IngestQueue(batch_size=self.config.batch_size, writers=self.config.writers)
        queue.start()
        handler = InboundHandler(queue, max_recipients=self.config.max_recipients)
        submission = SubmissionHandler(
            max_recipients=self.config.max_recipients,
            allow_insecure_loopback=self.config.allow_insecure_loopback,
        )
        tls_context = self._tls_context()

        def factory() -> MailroomSMTP:
            options: dict[str, Any] = {
                "limits": self.limits,
                "data_timeout": self.config.data_timeout,
                "data_size_limit": self.config.max_message_size,
                "enable_SMTPUTF8": True,
                "hostname": self.config.hostname,
                "ident": "Mailroom ESMTP",
                "tls_context": tls_context,
                "timeout": self.config.command_timeout,
            }
            if self.config.submission:
                return SubmissionSMTP(
                    submission,
                    auth_required=True,
                    auth_require_tls=not self.config.allow_insecure_loopback,
                    auth_exclude_mechanism=["CRAM-MD5"],
                    **options,
                )
            return MailroomSMTP(handler, **options)

        server = await self._loop.create_server(
            factory, self.config.host, self.config.port, reuse_port=self.config.reuse_port or None
        )
        self.port = server.sockets[0].getsockname()[1]
        log.info("SMTP receiver listening on %s:%s", self.config.host, self.port)
        self._ready.set()
        await self._stopping.wait()
        # Graceful shutdown: stop listening, refuse new transactions with 421, let the ones
        # already in DATA finish (their 250 comes after commit), then close idle sessions.
        self.limits.is_draining = True
        server.close()
        deadline = loop_time() + self.config.shutdown_grace
        while self.limits.in_transaction and loop_time() < deadline:
            await asyncio.sleep(0.05)
        await queue.stop()
        for session in list(self.limits.sessions):
            session.close_idle()
        await asyncio.to_thread(shutdown_with_connections, handler.lookups, handler.lookup_threads)

    def request_stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    # Tests run the receiver on a thread of their own process.
    def start_in_thread(self) -> None:
        self._thread = threading.Thread(target=asyncio.run, args=(self.serve(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("SMTP receiver did not start")

    def stop_thread(self) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(10)
