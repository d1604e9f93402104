"""API keys, webhook endpoints and the webhook delivery log."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from mailcore.models import Domain, Organization


class Scope(models.TextChoices):
    SEND = "send", "Send mail"
    MAILBOXES = "mailboxes", "Read and change mailboxes"
    EVENTS = "events", "Read events and stats"
    SUPPRESSIONS = "suppressions", "Manage suppressions"
    WEBHOOKS = "webhooks", "Manage webhooks"
    DOMAINS = "domains", "Read domains, verify DNS and change tracking settings"


class ApiKey(models.Model):
    """A secret that acts for one organization. Only a SHA-256 of it is stored.

    The key is ``mr_<prefix>_<secret>``; ``prefix`` is shown in the admin and in logs so an
    operator can tell keys apart without ever seeing one again.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    domain = models.ForeignKey(
        Domain,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Restricts sending and /v3/ to this domain; empty means every domain.",
    )
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices), default=list)
    rate_per_second = models.IntegerField(
        null=True, blank=True, help_text="Override of MAILROOM_API_KEY_RATE (requests/s)."
    )
    is_active = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"mr_{self.prefix}_…"


class WebhookEndpoint(models.Model):
    """A URL that receives a tenant's events, from a cursor into the event table (an outbox)."""

    class Format(models.TextChoices):
        NATIVE = "native", "Mailroom (X-Mailroom-Signature)"
        MAILGUN = "mailgun", "Mailgun-compatible"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=1000)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.NATIVE)
    event_types = ArrayField(
        models.CharField(max_length=32), default=list, blank=True, help_text="Empty means all."
    )
    signing_key = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    # Outbox cursor: the id of the last event handed over (delivered, or given up on).
    last_event_id = models.BigIntegerField(default=0)
    consecutive_failures = models.IntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One POST of one event to one endpoint (the delivery log)."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.BigIntegerField()
    event_type = models.CharField(max_length=32)
    attempt = models.IntegerField(default=1)
    status_code = models.IntegerField(null=True, blank=True)
    is_success = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    duration_ms = models.IntegerField(default=0)
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["endpoint", "-id"], name="webhook_delivery_log")]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.event_id} -> {self.status_code}"


class IdempotencyKey(models.Model):
    """One ``Idempotency-Key`` of one organization on a send endpoint (IETF
    draft-ietf-httpapi-idempotency-key-header): the fingerprint of the first request and,
    once it finished, its response. ``locked_until`` is the lease of the request that is
    running it; a lease that lapsed (the process died) may be taken over by a retry."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the canonical request.")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    locked_until = models.DateTimeField()
    response_status = models.IntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"], name="uniq_api_idempotency_key"
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], name="api_idempotency_expiry")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class DomainDnsCheck(models.Model):
    """The last DNS check of a domain's records (see :mod:`api.services.dns_check`)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    domain = models.OneToOneField(Domain, on_delete=models.CASCADE, related_name="dns_check")
    # One object per record: purpose, type, name, value, status, found, detail.
    results = models.JSONField(default=list)
    is_verified = models.BooleanField(default=False, help_text="SPF and DKIM found valid.")
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "domain DNS check"

    def __str__(self) -> str:
        return f"{self.domain} ({'verified' if self.is_verified else 'unverified'})"
