"""The log of retention runs: what each run purged, shown read-only in the admin."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class RetentionRun(models.Model):
    """One kind of data purged by one run of the retention task (or ``manage.py retention``)."""

    class Kind(models.TextChoices):
        TRASH = "trash", "Trash messages"
        SPAM = "spam", "Spam (Junk) messages"
        EVENTS = "events", "Event partitions"
        WEBHOOK_LOGS = "webhook_logs", "Webhook delivery logs"
        OUTBOUND = "outbound", "Finished outbound messages"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    retention_days = models.IntegerField(help_text="The policy applied; 0 keeps data forever.")
    cutoff = models.DateTimeField(null=True, blank=True, help_text="Older data was purged.")
    is_dry_run = models.BooleanField(default=False, help_text="Counted only; nothing removed.")
    is_complete = models.BooleanField(
        default=True, help_text="False when the run's time budget ran out; the next run goes on."
    )
    rows_removed = models.BigIntegerField(default=0)
    bytes_removed = models.BigIntegerField(default=0, help_text="Raw message bytes freed.")
    blobs_removed = models.IntegerField(default=0)
    partitions_dropped = ArrayField(models.CharField(max_length=63), default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["-started_at"], name="retention_run_started")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.started_at:%Y-%m-%d %H:%M}"
