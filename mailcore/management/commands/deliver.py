"""``manage.py deliver``: run an outbound dispatcher in the foreground.

The same dispatcher the Celery task runs, for a dedicated delivery process (or several: they
share the work through the database) and for tests and benchmarks. ``--once`` delivers what is
due, waits out other workers' leases, and exits when nothing is left to do.
"""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand

from mailcore.services.outbound.delivery import DispatchOptions, run_dispatcher


class Command(BaseCommand):
    help = "Deliver queued outbound mail (runs until stopped; --once: until nothing is left)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Exit when nothing is left.")
        parser.add_argument("--connections", type=int, default=None)
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--poll", type=float, default=0.05, help="Idle poll interval (s).")

    def handle(self, *args: Any, **options: Any) -> None:
        dispatch_options = DispatchOptions(
            idle_seconds=0.0 if options["once"] else None,
            wait_for_leases=options["once"],
            poll_seconds=options["poll"],
        )
        if options["connections"]:
            dispatch_options.connections = options["connections"]
        if options["batch_size"]:
            dispatch_options.batch_size = options["batch_size"]
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: dispatch_options.stop.set())
        stats = run_dispatcher(dispatch_options)
        self.stdout.write(
            f"claimed {stats.claimed}, delivered {stats.delivered}, deferred {stats.deferred},"
            f" bounced {stats.bounced}, failed {stats.failed};"
            f" {stats.transactions} transactions over {stats.connections} connections"
        )
