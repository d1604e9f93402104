"""Mailbox reading for API keys: the webmail's search syntax, keyset pages, message actions.

Search reuses :class:`mailcore.search.compile.QueryCompiler` scoped to one mailbox the caller
already got through :func:`mailcore.access.get_mailbox_for_organization`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mailcore.models import Folder, Mailbox, Message
from mailcore.search import SearchError, parse_query
from mailcore.search.compile import HIDDEN_ROLES, QueryCompiler
from mailcore.services import messages as message_actions

MAX_LIMIT = 200


class MailboxQueryError(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def encode_cursor(message: Message) -> str:
    text = f"{message.received_at.isoformat()}|{message.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = text.partition("|")
        moment = parse_datetime(stamp)
        if moment is None:
            raise ValueError(stamp)
        return moment, int(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise MailboxQueryError("Invalid cursor.", "cursor") from exc


def list_messages(
    mailbox: Mailbox,
    *,
    query: str = "",
    folder: Folder | None = None,
    cursor: str = "",
    limit: int = 50,
) -> tuple[list[Message], str]:
    """Newest first by ``(received_at, id)``; ``query`` in the webmail's search syntax."""
    messages: QuerySet[Message] = Message.objects.filter(mailbox_id=mailbox.id)
    hidden_allowed = folder is not None
    if query.strip():
        try:
            node = parse_query(query)
        except SearchError as exc:
            raise MailboxQueryError(str(exc), "q") from exc
        if node is not None:
            compiler = QueryCompiler([mailbox.id], now=timezone.now())
            try:
                messages = messages.filter(compiler.compile(node))
            except SearchError as exc:
                raise MailboxQueryError(str(exc), "q") from exc
            hidden_allowed = hidden_allowed or compiler.asks_for_hidden_folders(node)
    if folder is not None:
        messages = messages.filter(folder_id=folder.id)
    elif query.strip() and not hidden_allowed:
        hidden = Folder.objects.filter(mailbox_id=mailbox.id, role__in=HIDDEN_ROLES)
        messages = messages.exclude(folder_id__in=list(hidden.values_list("id", flat=True)))
    if cursor:
        received_at, message_id = decode_cursor(cursor)
        messages = messages.filter(
            Q(received_at__lt=received_at) | Q(received_at=received_at, id__lt=message_id)
        )
    limit = max(1, min(limit, MAX_LIMIT))
    page = list(messages.order_by("-received_at", "-id")[: limit + 1])
    next_cursor = encode_cursor(page[limit - 1]) if len(page) > limit else ""
    return page[:limit], next_cursor


def update_message(
    message: Message,
    *,
    is_seen: bool | None = None,
    is_flagged: bool | None = None,
    folder: Folder | None = None,
) -> None:
    """Flags and moves through the webmail's services (counts and pushes stay right)."""
    if folder is not None and folder.mailbox_id != message.mailbox_id:
        raise MailboxQueryError("The folder belongs to another mailbox.", "folder_id")
    if is_seen is not None:
        message_actions.set_seen([message], is_seen)
    if is_flagged is not None:
        message_actions.set_flagged([message], is_flagged)
    if folder is not None:
        message_actions.move_messages(message.mailbox.user, [message], folder)


def delete_message(message: Message, *, is_permanent: bool) -> str:
    """To Trash, or for good when permanent or already in Trash; returns what happened."""
    if is_permanent or message.folder.role == Folder.Role.TRASH:
        message_actions.delete_permanently([message])
        return "deleted"
    try:
        message_actions.move_to_role(message.mailbox.user, [message], Folder.Role.TRASH)
    except message_actions.MessageActionError as exc:
        raise MailboxQueryError(str(exc), "id") from exc
    return "trashed"
