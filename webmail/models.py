"""What the webmail keeps besides the mail itself: preferences, identities, uploads, sends."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from mailcore.models import Mailbox, Message, Organization


class Preferences(models.Model):
    """One row per user, created on first save; defaults apply while there is none."""

    class RemoteImages(models.TextChoices):
        ASK = "ask", "Ask before showing remote images"
        ALWAYS = "always", "Always show remote images"

    PAGE_SIZES = (25, 50, 100)
    UNDO_SEND_SECONDS = (0, 5, 10, 20, 30)

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webmail_preferences"
    )
    signature = models.TextField(blank=True)
    remote_images = models.CharField(
        max_length=8, choices=RemoteImages.choices, default=RemoteImages.ASK
    )
    page_size = models.PositiveSmallIntegerField(default=50)
    undo_send_seconds = models.PositiveSmallIntegerField(default=10)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class TrustedSender(models.Model):
    """ "Always show images from this sender"."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_senders"
    )
    address = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "address"], name="uniq_trusted_sender")
        ]

    def __str__(self) -> str:
        return self.address


class Identity(models.Model):
    """An address the user sends as: an alias of a mailbox they own, with a display name."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identities"
    )
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["user", "address"], name="uniq_identity_address")
        ]

    def __str__(self) -> str:
        return self.address


class Upload(models.Model):
    """A file uploaded while composing; kept until its draft is sent or discarded."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=127)
    size = models.IntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class ScheduledSend(models.Model):
    """A draft that goes out at ``send_at``: "send later", and the undo-send window.

    The draft stays in Drafts until it is sent; sending turns it into the Sent copy.
    ``message_id`` is fixed when the row is made so a retried send is deduplicated by the
    receiving side.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    draft = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    envelope_from = models.CharField(max_length=254)
    recipients = models.JSONField(default=list, help_text="Envelope recipients, To+Cc+Bcc.")
    message_id = models.CharField(max_length=255)
    send_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["send_at"],
                condition=Q(state__in=["pending", "sending"]),
                name="scheduled_due",
            )
        ]

    def __str__(self) -> str:
        return f"scheduled send {self.pk} ({self.state})"
