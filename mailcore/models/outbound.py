"""The outbound queue: messages to send, one delivery per recipient, attempts, suppressions, DKIM.

The database is the queue of record (a transactional outbox): a message and its deliveries are
written in one transaction and workers claim due deliveries with ``FOR UPDATE SKIP LOCKED`` and a
lease. Celery only carries wake-ups. See ``mailcore/services/outbound/__init__.py``.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from mailcore.models.mail import Blob
from mailcore.models.tenancy import Domain, Mailbox, Organization


class DkimKey(models.Model):
    """A 2048-bit RSA key of a sending domain; at most one active key (the signing one) each.

    Retired keys are kept so their DNS records can stay published while mail signed with them
    is still in flight.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="dkim_keys")
    selector = models.CharField(max_length=63)
    private_key_pem = models.TextField(help_text="PKCS#1 PEM. Never shown in the admin.")
    public_key = models.TextField(help_text="Base64 DER SubjectPublicKeyInfo (the p= tag).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "DKIM key"
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="uniq_dkim_selector"),
            models.UniqueConstraint(
                fields=["domain"], condition=Q(is_active=True), name="uniq_dkim_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name}"


class OutboundMessage(models.Model):
    """One accepted message; its raw bytes (CRLF, with a Message-ID) live in ``blob``."""

    class Source(models.TextChoices):
        API = "api", "API"
        SMTP = "smtp", "SMTP submission"
        WEBMAIL = "webmail", "Webmail"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="+", help_text="The sending domain."
    )
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices)
    mail_from = models.CharField(max_length=254)
    message_id = models.CharField(max_length=255, help_text="Message-ID without <>.")
    subject = models.TextField(blank=True)
    size = models.IntegerField()
    tags = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    track_opens = models.BooleanField(null=True, blank=True)
    track_clicks = models.BooleanField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    send_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["message_id"], name="outmsg_message_id"),
            models.Index(fields=["domain", "-created_at"], name="outmsg_domain_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="uniq_outmsg_idempotency",
            )
        ]

    def __str__(self) -> str:
        return self.subject or f"<{self.message_id}>"


class Delivery(models.Model):
    """One recipient of one outbound message: the unit workers claim, retry and report on."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        DELIVERED = "delivered"
        DEFERRED = "deferred"
        BOUNCED = "bounced"
        FAILED = "failed"
        SUPPRESSED = "suppressed"
        CANCELLED = "cancelled"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message = models.ForeignKey(
        OutboundMessage, on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.CharField(max_length=254)
    recipient_domain = models.CharField(max_length=253)
    is_local = models.BooleanField(default=False, help_text="Delivered to a local mailbox.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempt_count = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(help_text="Temporary failures after this are final.")
    leased_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    reply_code = models.SmallIntegerField(null=True, blank=True)
    enhanced_status = models.CharField(max_length=16, blank=True)
    reply = models.TextField(blank=True, help_text="The last SMTP reply or failure.")
    reason = models.CharField(max_length=32, blank=True, help_text="Bounce reason name.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # What the claim query scans, newest-due last; tiny because finished rows leave it.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["queued", "deferred"]),
                name="delivery_due",
            ),
            models.Index(
                fields=["leased_until"], condition=Q(status="sending"), name="delivery_lease"
            ),
            models.Index(fields=["recipient"], name="delivery_recipient"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient} ({self.status})"


class DeliveryAttempt(models.Model):
    """The log of one try: the peer's reply (or the connection failure) and what it meant."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered"
        DEFERRED = "deferred"
        BOUNCED = "bounced"
        FAILED = "failed"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reply_code = models.SmallIntegerField(null=True, blank=True)
    enhanced_status = models.CharField(max_length=16, blank=True)
    reply = models.TextField(blank=True)
    remote_host = models.CharField(max_length=255, blank=True)
    is_tls = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.outcome} {self.reply_code or ''}".strip()


class Suppression(models.Model):
    """An address a sending domain never sends to again until an operator or the API removes it."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", "Hard bounce"
        COMPLAINT = "complaint", "Complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
        MANUAL = "manual", "Added by hand"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="suppressions")
    address = models.CharField(max_length=254, help_text="Lower-case address.")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    source = models.CharField(
        max_length=16, blank=True, help_text="smtp, dsn, arf, admin, api or import."
    )
    detail = models.TextField(blank=True, help_text="Status code, bounce reason, diagnostic.")
    delivery_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["domain", "address"], name="uniq_suppression")
        ]

    def __str__(self) -> str:
        return self.address
