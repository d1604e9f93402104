"""Who may see which analytics: the one door for dashboards, consoles and timelines.

Superusers are operators: they see every tenant (scope ``None``) or any one tenant. Other staff
users see their own tenant only (the organization of their mailbox). Everyone else gets 404.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404

from mailcore.access import mailboxes_for_user
from mailcore.models import OutboundMessage


def own_organization_id(user: Any) -> int | None:
    mailbox = getattr(user, "mailbox", None) if user.is_authenticated else None
    return mailbox.organization_id if mailbox is not None else None


def analytics_scope_for_user(user: Any, requested: int | None) -> int | None:
    """The organization id the user may watch (None = all tenants); raises Http404 otherwise."""
    if user is None or not user.is_authenticated or not user.is_staff:
        raise Http404("No analytics here.")
    if user.is_superuser:
        return requested
    own = own_organization_id(user)
    if own is None or requested not in (None, own):
        raise Http404("No analytics here.")
    return own


def get_outbound_message_for_user(
    user: Any, message_id: int | None = None, *, header_message_id: str = ""
) -> OutboundMessage:
    """An outbound message sent from a mailbox the user may use (operators: any), by id or by
    its Message-ID header (what the webmail's Sent copy knows)."""
    messages = OutboundMessage.objects.all()
    if not user.is_superuser:
        messages = messages.filter(mailbox__in=mailboxes_for_user(user))
    if message_id is not None:
        messages = messages.filter(id=message_id)
    elif header_message_id:
        messages = messages.filter(message_id=header_message_id.strip().strip("<>"))
    else:
        raise Http404("No such message.")
    message = messages.order_by("-id").first()
    if message is None:
        raise Http404("No such message.")
    return message
