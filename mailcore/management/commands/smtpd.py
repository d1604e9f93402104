"""``manage.py smtpd``: the inbound SMTP receiver."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from mailcore.smtp.server import Receiver, ReceiverConfig


class Command(BaseCommand):
    help = "Run the inbound SMTP receiver (MX for local domains)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=None, help="Address to listen on.")
        parser.add_argument("--port", type=int, default=None, help="Port to listen on.")
        parser.add_argument(
            "--submission",
            action="store_true",
            help="Authenticated submission (AUTH after STARTTLS) instead of the MX receiver.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = ReceiverConfig()
        if options["submission"]:
            config.submission = True
            config.port = settings.MAILROOM_SUBMISSION_PORT
        if options["host"]:
            config.host = options["host"]
        if options["port"] is not None:
            config.port = options["port"]
        receiver = Receiver(config)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, receiver.request_stop)
            task = asyncio.create_task(receiver.serve())
            while receiver._ready.is_set() is False and not task.done():
                await asyncio.sleep(0.01)
            if not task.done():
                kind = "SMTP submission" if config.submission else "SMTP receiver"
                self.stdout.write(f"{kind} on {config.host}:{receiver.port}", ending="\n")
                self.stdout.flush()
            await task

        asyncio.run(main())
