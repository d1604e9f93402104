"""The one door to a user's mailboxes, folders and messages.

Every lookup by an id that came from a request goes through here, and anything the user may not
see raises the same ``Http404`` as something that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet
from django.http import Http404

from mailcore.models import (
    Attachment,
    Domain,
    Folder,
    Label,
    Mailbox,
    Message,
    OutboundMessage,
    User,
)


def mailboxes_for_user(user: User) -> QuerySet[Mailbox]:
    """The user's own mailbox and those shared with them by an operator."""
    if not user.is_authenticated:
        return Mailbox.objects.none()
    return Mailbox.objects.filter(Q(user=user) | Q(grants__user=user), is_active=True).distinct()


def get_mailbox_for_user(user: User, mailbox_id: int) -> Mailbox:
    mailbox = mailboxes_for_user(user).filter(id=mailbox_id).first()
    if mailbox is None:
        raise Http404("No such mailbox.")
    return mailbox


def folders_for_user(user: User) -> QuerySet[Folder]:
    return Folder.objects.filter(mailbox__in=mailboxes_for_user(user))


def get_folder_for_user(user: User, folder_id: int) -> Folder:
    folder = folders_for_user(user).select_related("mailbox").filter(id=folder_id).first()
    if folder is None:
        raise Http404("No such folder.")
    return folder


def messages_for_user(user: User) -> QuerySet[Message]:
    return Message.objects.filter(mailbox__in=mailboxes_for_user(user))


def get_message_for_user(user: User, message_id: int) -> Message:
    message = (
        messages_for_user(user).select_related("folder", "mailbox").filter(id=message_id).first()
    )
    if message is None:
        raise Http404("No such message.")
    return message


def get_messages_for_user(user: User, message_ids: Iterable[int]) -> list[Message]:
    """All of ``message_ids``, or 404 if any one is missing or not the user's."""
    wanted = set(message_ids)
    found = list(messages_for_user(user).filter(id__in=wanted).order_by("id"))
    if not wanted or len(found) != len(wanted):
        raise Http404("No such message.")
    return found


def thread_messages_for_user(user: User, message: Message) -> QuerySet[Message]:
    """The conversation of ``message`` (already checked) within its mailbox, oldest first."""
    if message.thread_id is None:
        return messages_for_user(user).filter(id=message.id)
    return (
        messages_for_user(user)
        .filter(mailbox_id=message.mailbox_id, thread_id=message.thread_id)
        .order_by("received_at", "id")
    )


def get_attachment_for_user(user: User, attachment_id: int) -> Attachment:
    attachment = (
        Attachment.objects.filter(message__in=messages_for_user(user), id=attachment_id)
        .select_related("message")
        .first()
    )
    if attachment is None:
        raise Http404("No such attachment.")
    return attachment


def labels_for_user(user: User) -> QuerySet[Label]:
    return Label.objects.filter(mailbox__in=mailboxes_for_user(user))


def get_label_for_user(user: User, label_id: int) -> Label:
    label = labels_for_user(user).select_related("mailbox").filter(id=label_id).first()
    if label is None:
        raise Http404("No such label.")
    return label


def sendable_mailboxes_for_user(user: User) -> QuerySet[Mailbox]:
    """Mailboxes the user may send from: their own and shares granted with ``can_send``."""
    if not user.is_authenticated:
        return Mailbox.objects.none()
    return Mailbox.objects.filter(
        Q(user=user) | Q(grants__user=user, grants__can_send=True), is_active=True
    ).distinct()


# --- Organization-scoped doors (API keys act for a tenant, not a user) ----------------------


def mailboxes_for_organization(organization_id: int) -> QuerySet[Mailbox]:
    return Mailbox.objects.filter(organization_id=organization_id, is_active=True)


def get_mailbox_for_organization(organization_id: int, mailbox_id: int) -> Mailbox:
    mailbox = mailboxes_for_organization(organization_id).filter(id=mailbox_id).first()
    if mailbox is None:
        raise Http404("No such mailbox.")
    return mailbox


def get_folder_for_organization(organization_id: int, folder_id: int) -> Folder:
    folder = (
        Folder.objects.filter(mailbox__in=mailboxes_for_organization(organization_id), id=folder_id)
        .select_related("mailbox")
        .first()
    )
    if folder is None:
        raise Http404("No such folder.")
    return folder


def messages_for_organization(organization_id: int) -> QuerySet[Message]:
    return Message.objects.filter(
        organization_id=organization_id, mailbox__in=mailboxes_for_organization(organization_id)
    )


def get_message_for_organization(organization_id: int, message_id: int) -> Message:
    message = (
        messages_for_organization(organization_id)
        .select_related("folder", "mailbox", "mailbox__user")
        .filter(id=message_id)
        .first()
    )
    if message is None:
        raise Http404("No such message.")
    return message


def get_domain_for_organization(organization_id: int, name: str) -> Domain:
    domain = Domain.objects.filter(organization_id=organization_id, name=name.lower()).first()
    if domain is None:
        raise Http404("No such domain.")
    return domain


def get_outbound_message_for_organization(organization_id: int, message_id: int) -> OutboundMessage:
    message = OutboundMessage.objects.filter(organization_id=organization_id, id=message_id).first()
    if message is None:
        raise Http404("No such message.")
    return message
