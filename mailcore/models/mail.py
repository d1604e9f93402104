"""Folders, threads, labels, stored messages, their raw bytes and attachments."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from mailcore.models.tenancy import Mailbox, Organization


class Folder(models.Model):
    class Role(models.TextChoices):
        INBOX = "inbox", "Inbox"
        SENT = "sent", "Sent"
        DRAFTS = "drafts", "Drafts"
        TRASH = "trash", "Trash"
        JUNK = "junk", "Junk"
        ARCHIVE = "archive", "Archive"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    # Maintained with F() updates by the services that add, move and flag messages.
    total_count = models.IntegerField(default=0)
    unread_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="uniq_folder_mailbox_name"),
            models.UniqueConstraint(
                fields=["mailbox", "role"], condition=~Q(role=""), name="uniq_folder_mailbox_role"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Thread(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+", db_index=False)
    subject_key = models.CharField(max_length=255, blank=True)
    message_count = models.IntegerField(default=0)
    last_message_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["mailbox", "subject_key", "-last_message_at"], name="thread_subj")
        ]

    def __str__(self) -> str:
        return self.subject_key or f"thread {self.pk}"


class Label(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#6b7280", help_text="#rrggbb")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="uniq_label_mailbox_name")
        ]

    def __str__(self) -> str:
        return self.name


class Blob(models.Model):
    """Raw message bytes, stored losslessly as ``bytea`` (PostgreSQL TOAST compresses them).

    One blob is shared by every mailbox copy of a message received in one SMTP transaction.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"blob {self.pk} ({self.size} bytes)"


class Message(models.Model):
    """One message in one mailbox folder."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    folder = models.ForeignKey(
        Folder, on_delete=models.PROTECT, related_name="messages", db_index=False
    )
    thread = models.ForeignKey(
        Thread, on_delete=models.SET_NULL, null=True, related_name="messages", db_index=False
    )
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    labels = models.ManyToManyField(Label, blank=True, related_name="messages")

    message_id = models.CharField(max_length=255, blank=True)
    in_reply_to = models.CharField(max_length=255, blank=True)
    references = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    subject = models.TextField(blank=True)
    from_name = models.CharField(max_length=255, blank=True)
    from_address = models.CharField(max_length=254, blank=True)
    to_addresses = models.JSONField(default=list, help_text="[[name, address], ...]")
    cc_addresses = models.JSONField(default=list)
    envelope_from = models.CharField(max_length=254, blank=True)
    envelope_recipient = models.CharField(max_length=254, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="The Date header.")
    received_at = models.DateTimeField(default=timezone.now)
    # When the message entered its current folder; NULL: it arrived there (at received_at).
    # Retention of Trash and Junk counts from this moment.
    moved_at = models.DateTimeField(null=True, blank=True)
    size = models.IntegerField()
    snippet = models.CharField(max_length=300, blank=True)
    has_attachments = models.BooleanField(default=False)
    is_seen = models.BooleanField(default=False)
    is_flagged = models.BooleanField(default=False)
    is_answered = models.BooleanField(default=False)
    is_draft = models.BooleanField(default=False)
    search_vector = SearchVectorField(null=True)

    class Meta:
        indexes = [
            # Keyset pagination of one folder, newest first: (received_at, id) < cursor.
            models.Index(fields=["folder", "-received_at", "-id"], name="msg_folder_recv"),
            models.Index(fields=["mailbox", "-received_at", "-id"], name="msg_mailbox_recv"),
            models.Index(
                fields=["mailbox", "message_id"],
                condition=~Q(message_id=""),
                name="msg_mailbox_msgid",
            ),
            models.Index(fields=["thread", "received_at"], name="msg_thread_recv"),
            # What retention scans: old messages of given (Trash, Junk) folders.
            models.Index(
                F("folder"), Coalesce("moved_at", "received_at"), name="msg_folder_entered"
            ),
            GinIndex(fields=["search_vector"], name="msg_search"),
        ]

    def __str__(self) -> str:
        return self.subject or "(no subject)"


class Attachment(models.Model):
    """Metadata of one MIME part; the bytes stay in the message's blob (``path`` finds them)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    path = models.CharField(max_length=100)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=127)
    size = models.IntegerField()
    content_id = models.CharField(max_length=255, blank=True)
    is_inline = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.filename
