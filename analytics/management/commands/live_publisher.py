"""``manage.py live_publisher``: push live dashboard updates within a fraction of a second of
each event (analytics/services/publisher.py). Runs until SIGTERM/SIGINT; several may run, one
publishes (Redis lease)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from analytics.services.publisher import LivePublisher


class Command(BaseCommand):
    help = "Publish live analytics updates to the dashboards' channel groups."

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("live publisher running")
        LivePublisher().run(stop)
