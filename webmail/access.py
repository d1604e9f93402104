"""The door to the webmail's own objects (uploads, scheduled sends, identities).

Built on :mod:`mailcore.access` (whose mailbox rules decide what a user may see); like it, anything
the user may not see raises the same ``Http404`` as something that does not exist.
"""

from __future__ import annotations

from django.http import Http404

from mailcore.access import mailboxes_for_user
from mailcore.models import User
from webmail.models import Identity, ScheduledSend, Upload


def get_upload_for_user(user: User, upload_id: int) -> Upload:
    upload = Upload.objects.filter(user_id=user.pk, id=upload_id).first()
    if upload is None:
        raise Http404("No such upload.")
    return upload


def get_scheduled_send_for_user(user: User, scheduled_id: int) -> ScheduledSend:
    scheduled = (
        ScheduledSend.objects.filter(mailbox__in=mailboxes_for_user(user), id=scheduled_id)
        .select_related("draft", "mailbox")
        .first()
    )
    if scheduled is None:
        raise Http404("No such scheduled message.")
    return scheduled


def get_identity_for_user(user: User, identity_id: int) -> Identity:
    identity = Identity.objects.filter(user_id=user.pk, id=identity_id).first()
    if identity is None:
        raise Http404("No such identity.")
    return identity
