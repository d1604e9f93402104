"""The one door to a user's mailboxes, folders and messages.

Every lookup by an id that came from a request goes through here, and anything the user may not
see raises the same ``Http404`` as something that does not exist.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from mailcore.models import Folder, Mailbox, Message, User


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
