"""Mailcore's data model. Every large table carries ``organization`` (the tenant)."""

from mailcore.models.mail import Attachment, Blob, Folder, Label, Message, Thread
from mailcore.models.tenancy import Alias, Domain, Mailbox, MailboxGrant, Organization, User

__all__ = [
    "Alias",
    "Attachment",
    "Blob",
    "Domain",
    "Folder",
    "Label",
    "Mailbox",
    "MailboxGrant",
    "Message",
    "Organization",
    "Thread",
    "User",
]
