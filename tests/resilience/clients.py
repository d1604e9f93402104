"""An SMTP client that retries the way a real MTA does, for the fault tests."""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.factories import make_email


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: str  # unique; also the Subject, so the stored copy can be found
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes


def outgoing(
    key: str,
    *,
    mail_from: str = "dana@remote.test",
    to: tuple[str, ...] = ("alice@example.test",),
    with_message_id: bool = True,
) -> Outgoing:
    raw = make_email(sender=mail_from, to=", ".join(to), subject=key, message_id=f"<{key}@t>")
    if not with_message_id:
        raw = raw.replace(f"Message-ID: <{key}@t>\r\n".encode(), b"")
    return Outgoing(key, mail_from, to, raw)


@dataclass(eq=False)  # a thread must stay hashable
class RetryingClient(threading.Thread):
    """Sends each message until it gets a 250. A lost connection, a refused connection or a
    4xx reply make it reconnect and send the same bytes again (after ``pause`` seconds); a 5xx
    reply is final. Without ``messages`` left it stops; :meth:`finish` asks it to stop after the
    message in flight is acknowledged (never leaving one half-sent)."""

    port: int
    messages: list[Outgoing]
    login: tuple[str, str] | None = None
    deadline_seconds: float = 120.0
    pause: float = 0.05
    interval: float = 0.0  # between messages: a steady flow rather than a burst
    acked: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)
    in_flight: str | None = None
    gave_up: str | None = None
    _finish: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def finish(self) -> None:
        self._finish.set()

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
        smtp.ehlo("client.test")
        if self.login is not None:
            smtp.login(*self.login)
        return smtp

    def run(self) -> None:
        deadline = time.monotonic() + self.deadline_seconds
        smtp: smtplib.SMTP | None = None
        for number, message in enumerate(self.messages):
            if self._finish.is_set():
                break
            if number and self.interval:
                time.sleep(self.interval)
            self.in_flight = message.key
            while True:
                if time.monotonic() > deadline:
                    self.gave_up = message.key
                    return
                code = 0
                try:
                    if smtp is None:
                        smtp = self._connect()
                    self.attempts[message.key] += 1
                    smtp.sendmail(message.mail_from, list(message.recipients), message.raw)
                except smtplib.SMTPRecipientsRefused as exc:
                    code = min(reply[0] for reply in exc.recipients.values())
                except smtplib.SMTPResponseException as exc:
                    code = exc.smtp_code
                except (OSError, smtplib.SMTPException):
                    code = -1
                if code == 0:
                    self.acked.append(message.key)
                    break
                if smtp is not None:
                    smtp.close()
                    smtp = None
                if code >= 500:
                    self.refused[message.key] = str(code)
                    break
                time.sleep(self.pause)
        self.in_flight = None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
