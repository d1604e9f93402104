"""The event store: one append-only row per state change of a message."""

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
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.recipient}"
