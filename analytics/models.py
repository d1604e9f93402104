"""The event store (partitioned by day), its rollups, their fill state and domain guardrails.

``analytics_event`` is a PostgreSQL table partitioned by RANGE (occurred_at), one partition per
UTC day (``analytics_event_pYYYYMMDD``) plus a DEFAULT partition that catches rows outside the
partitions created ahead (see analytics/services/partitions.py and docs/analytics.md). Its
primary key is (id, occurred_at) because a partitioned table's unique keys must contain the
partition key; the model keeps ``id`` as its Django primary key: ids come from one identity
sequence, so they are unique anyway, and bulk inserts (INSERT ... RETURNING id) work as usual.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.utils import timezone


class Event(models.Model):
    class Type(models.TextChoices):
        RECEIVED = "received"
        ACCEPTED = "accepted"
        SENT = "sent"
        DELIVERED = "delivered"
        DEFERRED = "deferred"
        BOUNCED = "bounced"
        FAILED = "failed"
        SUPPRESSED = "suppressed"
        COMPLAINED = "complained"
        OPENED = "opened"
        CLICKED = "clicked"
        UNSUBSCRIBED = "unsubscribed"
        WEBHOOK_DELIVERED = "webhook_delivered"
        WEBHOOK_FAILED = "webhook_failed"
        REPUTATION_WARNING = "reputation_warning"
        REPUTATION_PAUSED = "reputation_paused"
        REPUTATION_RESUMED = "reputation_resumed"

    # Plain ids, not foreign keys: events outlive the rows they describe and must never block
    # (or be cascaded by) deletes of messages.
    organization_id = models.BigIntegerField()
    type = models.CharField(max_length=32, choices=Type.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    message_id = models.BigIntegerField(null=True, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    tags = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            BrinIndex(fields=["occurred_at"], name="event_time_brin"),
            models.Index(fields=["organization_id", "-occurred_at"], name="event_org_time"),
            models.Index(
                fields=["organization_id", "type", "-occurred_at"], name="event_org_type_time"
            ),
            models.Index(fields=["organization_id", "recipient"], name="event_org_recipient"),
            models.Index(fields=["message_id"], name="event_message"),
            # The event API and webhook cursors page by id within a tenant.
            models.Index(fields=["organization_id", "id"], name="event_org_id"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.recipient}"


class EventRollup(models.Model):
    """Counts of events per bucket, tenant, event type, sending domain, bounce reason and tag.

    ``tag = ''`` rows count every event once (all tags); rows with a tag count the events that
    carry it, so a tag filter and the unfiltered total never double count.
    """

    class Resolution(models.TextChoices):
        MINUTE = "minute"
        HOUR = "hour"
        DAY = "day"

    resolution = models.CharField(max_length=8, choices=Resolution.choices)
    bucket = models.DateTimeField()
    organization_id = models.BigIntegerField()
    type = models.CharField(max_length=32)
    domain = models.CharField(max_length=253, blank=True)
    reason = models.CharField(max_length=64, blank=True)
    tag = models.CharField(max_length=128, blank=True)
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "resolution",
                    "organization_id",
                    "bucket",
                    "type",
                    "domain",
                    "reason",
                    "tag",
                ],
                name="uniq_rollup_key",
            )
        ]
        indexes = [
            # Fills read one resolution's time range across tenants; guardrails too.
            models.Index(fields=["resolution", "bucket"], name="rollup_resolution_bucket"),
        ]

    def __str__(self) -> str:
        return f"{self.resolution} {self.bucket:%Y-%m-%d %H:%M} {self.type} {self.count}"


class FillState(models.Model):
    """How far a rollup has been filled: every bucket before ``end_time`` is complete."""

    property = models.CharField(max_length=40, unique=True)
    end_time = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.property} until {self.end_time:%Y-%m-%d %H:%M}"


class DomainReputation(models.Model):
    """Rolling bounce/complaint rates of one sending domain and the guardrail state they caused.

    Kept here (keyed by the mailcore Domain id) so guardrails need no migration in mailcore.
    """

    class Status(models.TextChoices):
        OK = "ok"
        WARNING = "warning"
        PAUSED = "paused"

    domain_id = models.BigIntegerField(unique=True)
    domain_name = models.CharField(max_length=253, unique=True)
    organization_id = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    sent_count = models.IntegerField(default=0)
    bounce_rate = models.FloatField(default=0.0)
    complaint_rate = models.FloatField(default=0.0)
    warned_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.CharField(max_length=254, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.domain_name} ({self.status})"


class DomainTracking(models.Model):
    """Open, click and unsubscribe tracking of one sending domain: what applies to a message
    that does not say (its ``track_opens``/``track_clicks`` of None). Off unless set, as on
    Mailgun; a domain without a row has everything off.
    """

    domain = models.OneToOneField(
        "mailcore.Domain", on_delete=models.CASCADE, primary_key=True, related_name="tracking"
    )
    track_opens = models.BooleanField(default=False, help_text="Add the open pixel.")
    track_clicks = models.BooleanField(
        default=False, help_text="Rewrite HTML links through the click redirect."
    )
    track_unsubscribes = models.BooleanField(
        default=False,
        help_text="Add RFC 8058 List-Unsubscribe headers (one-click unsubscribe).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "tracking settings"
        verbose_name_plural = "tracking settings"

    def __str__(self) -> str:
        return f"tracking of domain {self.domain_id}"
