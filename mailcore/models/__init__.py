"""Mailcore's data model. Every large table carries ``organization`` (the tenant)."""

from mailcore.models.mail import Attachment, Blob, Folder, Label, Message, Thread
from mailcore.models.outbound import (
    Delivery,
    DeliveryAttempt,
    DkimKey,
    OutboundMessage,
    Suppression,
)
from mailcore.models.retention import RetentionRun
from mailcore.models.tenancy import Alias, Domain, Mailbox, MailboxGrant, Organization, User

__all__ = [
    "Alias",
    "Attachment",
    "Blob",
    "Delivery",
    "DeliveryAttempt",
    "DkimKey",
    "Domain",
    "Folder",
    "Label",
    "Mailbox",
    "MailboxGrant",
    "Message",
    "Organization",
    "OutboundMessage",
    "RetentionRun",
    "Suppression",
    "Thread",
    "User",
]
