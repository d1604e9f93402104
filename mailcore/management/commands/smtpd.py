"""``manage.py smtpd``: the inbound SMTP receiver."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand

from mailcore.smtp.server import Receiver, ReceiverConfig


class Command(BaseCommand):
    help = "Run the inbound SMTP receiver (MX for local domains)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=None, help="Address to listen on.")
        parser.add_argument("--port", type=int, default=None, help="Port to listen on.")

    def handle(self, *args: Any, **options: Any) -> None:
        config = ReceiverConfig()
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
                self.stdout.write(f"SMTP receiver on {config.host}:{receiver.port}", ending="\n")
                self.stdout.flush()
            await task

        asyncio.run(main())
