"""``manage.py retention``: apply the retention policy now (what the hourly beat task does)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailcore.models import RetentionRun
from mailcore.services.retention import effective_policy, run_retention


class Command(BaseCommand):
    help = "Purge Trash/Junk mail, events, webhook logs and outbound logs older than the policy."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; remove nothing."
        )
        parser.add_argument(
            "--kind",
            action="append",
            choices=RetentionRun.Kind.values,
            help="Only this kind (repeatable); default: all.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        policy = effective_policy()
        runs = run_retention(dry_run=options["dry_run"], kinds=options["kind"], policy=policy)
        if not runs:
            raise CommandError("Another retention run is in progress; try again later.")
        verb = "would remove" if options["dry_run"] else "removed"
        for run in runs:
            if run.cutoff is None:
                self.stdout.write(f"{run.kind}: kept forever (retention 0 days)")
                continue
            line = (
                f"{run.kind}: older than {run.retention_days} days ({run.cutoff:%Y-%m-%d %H:%M}"
                f" UTC): {verb} {run.rows_removed} rows, {run.blobs_removed} blobs,"
                f" {run.bytes_removed} bytes"
            )
            if run.partitions_dropped:
                line += f", partitions {', '.join(run.partitions_dropped)}"
            if not run.is_complete:
                line += " (time budget spent; the next run goes on)"
            self.stdout.write(line)
            if run.error:
                self.stderr.write(f"{run.kind}: failed: {run.error}")
