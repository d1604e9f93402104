"""Sending mail from the webmail: scheduled and immediate sends, undo send.

A message being written is a draft (:mod:`webmail.services.drafts`). Sending makes a
:class:`webmail.models.ScheduledSend` row that comes due after the undo window (or at the chosen
"send later" time); :func:`send_due_messages` claims due rows with a conditional ``UPDATE``,
hands remote recipients to the outbound path (:func:`_hand_to_outbound`), delivers local ones
with :func:`mailcore.services.inbound.deliver_inbound`, and turns the draft into the Sent copy.
"""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mailcore import mime
from mailcore.models import Folder, Mailbox, Message, Thread, User
from mailcore.services.compose_mime import ComposeError, DraftContent
from mailcore.services.inbound import InboundItem, Status, deliver_inbound
from mailcore.services.messages import message_fields
from mailcore.services.outbound import SubmissionError, submit_outbound
from mailcore.services.recipients import Target, Verdict, resolve_recipient
from mailcore.services.searchdoc import search_vector_expression
from webmail.models import ScheduledSend, Upload
from webmail.services.drafts import (
    push_folder_counts,
    replace_blob,
    role_folder,
    save_draft,
    sync_attachments,
)

log = logging.getLogger(__name__)

SENDING_LEASE = timedelta(minutes=10)
UPLOAD_MAX_AGE = timedelta(days=2)
MAX_RECIPIENTS = 100


# --- Sending ------------------------------------------------------------------------------------


def check_recipients(addresses: Sequence[str]) -> None:
    """Refuse unknown local addresses; remote ones go to the outbound path."""
    if not addresses:
        raise ComposeError("Add at least one recipient.")
    if len(addresses) > MAX_RECIPIENTS:
        raise ComposeError(f"A message can have at most {MAX_RECIPIENTS} recipients.")
    unknown = [a for a in addresses if resolve_recipient(a).verdict == Verdict.UNKNOWN_USER]
    if unknown:
        raise ComposeError("There is no mailbox at " + ", ".join(unknown) + ".")


def schedule_send(
    user: User,
    mailbox: Mailbox,
    content: DraftContent,
    *,
    draft: Message | None,
    send_at: datetime,
) -> ScheduledSend:
    """Save the draft and queue it to go out at ``send_at`` (now + the undo window, or later)."""
    recipients = content.recipients
    check_recipients(recipients)
    with transaction.atomic():
        message = save_draft(mailbox, content, draft=draft)
        return ScheduledSend.objects.create(
            organization_id=mailbox.organization_id,
            mailbox=mailbox,
            user=user,
            draft=message,
            envelope_from=content.from_address,
            recipients=recipients,
            message_id=make_msgid(domain=mailbox.address.rpartition("@")[2])[1:-1],
            send_at=send_at,
        )


def cancel_scheduled(scheduled: ScheduledSend) -> bool:
    """Undo send / cancel a send-later; False when it already went (or is going) out."""
    cancelled = ScheduledSend.objects.filter(
        id=scheduled.id, state=ScheduledSend.State.PENDING
    ).update(state=ScheduledSend.State.CANCELLED, updated_at=timezone.now())
    return cancelled == 1


def send_due_messages(
    *, now: datetime | None = None, ids: Sequence[int] | None = None, limit: int = 50
) -> int:
    """Send scheduled messages that came due (and retry ones whose sender died); returns sent.

    The caller must not hold a transaction: local delivery commits on its own.
    """
    now = now or timezone.now()
    stale = now - SENDING_LEASE
    due = Q(state=ScheduledSend.State.PENDING, send_at__lte=now) | Q(
        state=ScheduledSend.State.SENDING, updated_at__lt=stale
    )
    candidates = ScheduledSend.objects.filter(due)
    if ids is not None:
        candidates = candidates.filter(id__in=ids)
    sent = 0
    for scheduled_id in candidates.order_by("send_at").values_list("id", flat=True)[:limit]:
        claimed = ScheduledSend.objects.filter(due, id=scheduled_id).update(
            state=ScheduledSend.State.SENDING, updated_at=timezone.now()
        )
        if not claimed:
            continue  # another worker has it
        try:
            _send_one(scheduled_id)
            sent += 1
        except ComposeError as exc:
            ScheduledSend.objects.filter(id=scheduled_id).update(
                state=ScheduledSend.State.FAILED, error=str(exc), updated_at=timezone.now()
            )
        except Exception:
            log.exception(
                "sending scheduled message %s failed; retried after the lease", scheduled_id
            )
    if ids is None:
        Upload.objects.filter(created_at__lt=now - UPLOAD_MAX_AGE).delete()
    return sent


def _send_one(scheduled_id: int) -> None:
    scheduled = ScheduledSend.objects.select_related("draft__blob").get(id=scheduled_id)
    now = timezone.now()
    message = email.message_from_bytes(
        bytes(scheduled.draft.blob.data), _class=EmailMessage, policy=email.policy.SMTP
    )
    del message["Date"]
    message["Date"] = format_datetime(now)
    del message["Message-ID"]
    message["Message-ID"] = f"<{scheduled.message_id}>"
    sent_copy = message.as_bytes()
    del message["Bcc"]
    wire = message.as_bytes()
    local: list[str] = []
    remote: list[str] = []
    targets: dict[int, Target] = {}
    for address in scheduled.recipients:
        resolution = resolve_recipient(address)
        if resolution.verdict == Verdict.LOCAL:
            local.append(address)
            for target in resolution.targets:
                targets.setdefault(target.mailbox_id, target)
        elif resolution.verdict == Verdict.FOREIGN_DOMAIN:
            remote.append(address)
        else:
            raise ComposeError(f"There is no mailbox at {address}.")
    if remote:
        _hand_to_outbound(scheduled, wire, remote)
    if targets:
        item = InboundItem(
            mail_from=scheduled.envelope_from,
            recipients=tuple(local),
            targets=tuple(targets.values()),
            data=wire,
            helo="webmail",
        )
        outcome = deliver_inbound([item])[0]
        if outcome.status == Status.TOO_BIG_FOR_QUOTA:
            raise ComposeError("The message is too big for a recipient's mailbox.")
        if outcome.status != Status.STORED:
            raise RuntimeError(f"local delivery: {outcome.status}")  # retried after the lease
    _file_sent_copy(scheduled, sent_copy, now)


def _hand_to_outbound(scheduled: ScheduledSend, raw: bytes, recipients: list[str]) -> None:
    """Queue the remote recipients on the outbound path; local ones were delivered directly."""
    try:
        submit_outbound(
            organization_id=scheduled.organization_id,
            mail_from=scheduled.envelope_from,
            recipients=recipients,
            raw=raw,
            source="webmail",
            idempotency_key=f"webmail-{scheduled.id}",
            mailbox_id=scheduled.mailbox_id,
        )
    except SubmissionError as exc:
        raise ComposeError(f"The message could not be sent: {exc}") from exc


def _file_sent_copy(scheduled: ScheduledSend, raw: bytes, now: datetime) -> None:
    """Turn the draft into the Sent copy and mark the message it answers."""
    parsed = mime.parse_message(raw)
    with transaction.atomic():
        Mailbox.objects.select_for_update().filter(id=scheduled.mailbox_id).first()
        draft = Message.objects.select_for_update().get(id=scheduled.draft_id)
        sent = role_folder(scheduled.mailbox_id, Folder.Role.SENT)
        grown = replace_blob(draft, raw)
        Message.objects.filter(id=draft.id).update(
            folder=sent,
            is_draft=False,
            is_seen=True,
            message_id=scheduled.message_id,
            received_at=now,
            search_vector=search_vector_expression(parsed),
            **message_fields(parsed, raw),
        )
        sync_attachments(draft, parsed)
        Folder.objects.filter(id=draft.folder_id).update(total_count=F("total_count") - 1)
        Folder.objects.filter(id=sent.id).update(total_count=F("total_count") + 1)
        Mailbox.objects.filter(id=scheduled.mailbox_id).update(used_bytes=F("used_bytes") + grown)
        if draft.thread_id:
            Thread.objects.filter(id=draft.thread_id).update(last_message_at=now)
        if parsed.in_reply_to:
            Message.objects.filter(
                mailbox_id=scheduled.mailbox_id, message_id=parsed.in_reply_to
            ).update(is_answered=True)
        ScheduledSend.objects.filter(id=scheduled.id).update(
            state=ScheduledSend.State.SENT, updated_at=now
        )
        push_folder_counts(
            scheduled.mailbox_id, sorted([draft.folder_id, sent.id]), "moved", [draft.id], sent.id
        )
