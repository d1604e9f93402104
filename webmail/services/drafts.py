"""Drafts: what the compose page opens with, and storing drafts in the Drafts folder.

A draft is a message in the mailbox's Drafts folder, rebuilt as MIME on every save (autosave
included); its attachment rows keep their ids while their part paths stay the same, so the
compose page's attachment tokens survive a save. Sending lives in
:mod:`webmail.services.compose`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from mailcore import access, mime
from mailcore.models import Attachment, Blob, Folder, Mailbox, Message, Thread, User
from mailcore.services.compose_mime import (
    AttachmentData,
    ComposeError,
    DraftContent,
    build_mime,
    forward_body,
    reply_body,
    reply_recipients,
    reply_subject,
)
from mailcore.services.messages import delete_permanently, mailbox_user_ids, message_fields
from mailcore.services.realtime import Push, push_on_commit
from mailcore.services.searchdoc import search_vector_expression
from webmail import access as webmail_access
from webmail.models import ScheduledSend, Upload


def store_upload(user: User, filename: str, content_type: str, data: bytes, limit: int) -> Upload:
    """Keep an uploaded file until a draft takes it in."""
    if len(data) > limit:
        raise ComposeError(f"{filename} is larger than {limit // (1024 * 1024)} MB.")
    return Upload.objects.create(
        user=user,
        filename=mime_filename(filename),
        content_type=(content_type or "application/octet-stream")[:127].lower(),
        size=len(data),
        data=data,
    )


def mime_filename(name: str) -> str:
    cleaned = "".join(ch for ch in name.replace("\\", "/").rsplit("/", 1)[-1] if ch.isprintable())
    return cleaned.strip()[:200] or "attachment"


@dataclass(slots=True)
class ComposeStart:
    """What the compose form opens with."""

    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    bcc: list[tuple[str, str]] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachment_ids: list[int] = field(default_factory=list)
    from_address: str = ""


def start_reply(original: Message, *, mode: str, mine: set[str], signature: str) -> ComposeStart:
    """Reply (``reply``/``reply_all``) or ``forward`` defaults for a message the user may read."""
    parsed = mime.parse_message(bytes(original.blob.data))
    sender = parsed.from_address
    name, address = (sender.name, sender.address) if sender else ("", "")
    if mode == "forward":
        return ComposeStart(
            subject=reply_subject(parsed.subject, "Fwd"),
            body=forward_body(
                text=parsed.text,
                from_name=name,
                from_address=address,
                date=parsed.date,
                subject=parsed.subject,
                to=[(a.name, a.address) for a in parsed.to],
                signature=signature,
            ),
            attachment_ids=list(
                original.attachments.filter(is_inline=False)
                .order_by("id")
                .values_list("id", flat=True)
            ),
        )
    to, cc = reply_recipients(
        reply_all=mode == "reply_all",
        sender=sender,
        reply_to=parsed.reply_to,
        to=parsed.to,
        cc=parsed.cc,
        mine=mine,
    )
    mine_in_original = [a.address for a in (*parsed.to, *parsed.cc) if a.address.lower() in mine]
    return ComposeStart(
        to=to,
        cc=cc,
        subject=reply_subject(parsed.subject),
        body=reply_body(
            text=parsed.text,
            from_name=name,
            from_address=address,
            date=parsed.date,
            signature=signature,
        ),
        in_reply_to=parsed.message_id,
        references=[*parsed.references, parsed.message_id] if parsed.message_id else [],
        from_address=mine_in_original[0].lower() if mine_in_original else "",
    )


def open_draft(draft: Message) -> ComposeStart:
    """The compose form of a saved draft."""
    parsed = mime.parse_message(bytes(draft.blob.data))
    sender = parsed.from_address
    return ComposeStart(
        to=[(a.name, a.address) for a in parsed.to],
        cc=[(a.name, a.address) for a in parsed.cc],
        bcc=[(a.name, a.address) for a in parsed.bcc],
        subject=parsed.subject,
        body=parsed.text,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        attachment_ids=list(
            draft.attachments.filter(is_inline=False).order_by("id").values_list("id", flat=True)
        ),
        from_address=sender.address.lower() if sender else "",
    )


def resolve_attachments(user: User, tokens: Sequence[str]) -> list[AttachmentData]:
    """``u:<upload id>`` and ``a:<attachment id>`` tokens from the form, through the access layer.

    Raises Http404 for a token the user may not use.
    """
    result = []
    for token in tokens:
        kind, _, number = token.partition(":")
        if not number.isdigit():
            raise Http404("No such attachment.")
        if kind == "u":
            upload = webmail_access.get_upload_for_user(user, int(number))
            result.append(
                AttachmentData(upload.filename, upload.content_type, bytes(upload.data), upload.id)
            )
        elif kind == "a":
            attachment = access.get_attachment_for_user(user, int(number))
            data, content_type, filename = mime.extract_part(
                bytes(attachment.message.blob.data), attachment.path
            )
            result.append(AttachmentData(attachment.filename or filename, content_type, data))
        else:
            raise Http404("No such attachment.")
    return result


# --- Drafts -------------------------------------------------------------------------------------


def role_folder(mailbox_id: int, role: Folder.Role) -> Folder:
    return Folder.objects.get(mailbox_id=mailbox_id, role=role)


def sync_attachments(message: Message, parsed: mime.ParsedMessage) -> None:
    """Make the attachment rows match the parts, keeping the ids of parts whose path stayed."""
    existing = {a.path: a for a in Attachment.objects.filter(message=message)}
    keep: set[str] = set()
    for info in parsed.attachments:
        values = {
            "filename": info.filename[:255],
            "content_type": info.content_type[:127],
            "size": info.size,
            "content_id": info.content_id[:255],
            "is_inline": info.is_inline,
        }
        row = existing.get(info.path)
        if row is None:
            Attachment.objects.create(
                organization_id=message.organization_id, message=message, path=info.path, **values
            )
        else:
            Attachment.objects.filter(id=row.id).update(**values)
        keep.add(info.path)
    Attachment.objects.filter(message=message).exclude(path__in=keep).delete()


def replace_blob(message: Message, raw: bytes) -> int:
    """Point ``message`` at a new blob with ``raw``; returns the size difference."""
    old_blob_id, old_size = message.blob_id, message.size
    blob = Blob.objects.create(
        organization_id=message.organization_id,
        sha256=_sha256(raw),
        size=len(raw),
        data=raw,
    )
    message.blob = blob
    Message.objects.filter(id=message.id).update(blob=blob)
    if not Message.objects.filter(blob_id=old_blob_id).exists():
        Blob.objects.filter(id=old_blob_id).delete()
    return len(raw) - old_size


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def save_draft(mailbox: Mailbox, content: DraftContent, *, draft: Message | None = None) -> Message:
    """Create or overwrite a draft in ``mailbox``'s Drafts folder.

    ``draft`` (already checked by the caller) must still be a draft; its pending scheduled
    sends are cancelled, because an edited message is sent again explicitly.
    """
    now = timezone.now()
    raw = build_mime(content, date=now)
    parsed = mime.parse_message(raw)
    fields = message_fields(parsed, raw)
    with transaction.atomic():
        Mailbox.objects.select_for_update().filter(id=mailbox.id).first()
        drafts = role_folder(mailbox.id, Folder.Role.DRAFTS)
        if draft is None:
            message = _new_draft(mailbox, drafts, content, raw, fields, now)
        else:
            message = _overwrite_draft(mailbox, drafts, draft, raw, fields, now)
        Message.objects.filter(id=message.id).update(search_vector=search_vector_expression(parsed))
        sync_attachments(message, parsed)
        used = [a.upload_id for a in content.attachments if a.upload_id is not None]
        if used:
            Upload.objects.filter(id__in=used).delete()
    return message


def _new_draft(
    mailbox: Mailbox,
    drafts: Folder,
    content: DraftContent,
    raw: bytes,
    fields: dict[str, object],
    now: datetime,
) -> Message:
    thread_id = None
    if content.in_reply_to:
        thread_id = (
            Message.objects.filter(mailbox=mailbox, message_id=content.in_reply_to)
            .exclude(thread=None)
            .values_list("thread_id", flat=True)
            .first()
        )
    if thread_id is None:
        thread_id = Thread.objects.create(
            organization_id=mailbox.organization_id,
            mailbox=mailbox,
            subject_key=mime.normalize_subject(content.subject)[:255],
            message_count=1,
            last_message_at=now,
        ).id
    else:
        Thread.objects.filter(id=thread_id).update(message_count=F("message_count") + 1)
    blob = Blob.objects.create(
        organization_id=mailbox.organization_id, sha256=_sha256(raw), size=len(raw), data=raw
    )
    message = Message.objects.create(
        organization_id=mailbox.organization_id,
        mailbox=mailbox,
        folder=drafts,
        thread_id=thread_id,
        blob=blob,
        received_at=now,
        is_seen=True,
        is_draft=True,
        **fields,
    )
    Folder.objects.filter(id=drafts.id).update(total_count=F("total_count") + 1)
    Mailbox.objects.filter(id=mailbox.id).update(used_bytes=F("used_bytes") + len(raw))
    push_folder_counts(mailbox.id, [drafts.id], "moved", [message.id], drafts.id)
    return message


def _overwrite_draft(
    mailbox: Mailbox,
    drafts: Folder,
    draft: Message,
    raw: bytes,
    fields: dict[str, object],
    now: datetime,
) -> Message:
    message = Message.objects.select_for_update().filter(id=draft.id, mailbox=mailbox).first()
    if message is None or not message.is_draft or message.folder_id != drafts.id:
        raise ComposeError("This draft has already been sent or deleted.")
    if ScheduledSend.objects.filter(draft=message, state=ScheduledSend.State.SENDING).exists():
        raise ComposeError("This message is being sent.")
    ScheduledSend.objects.filter(draft=message, state=ScheduledSend.State.PENDING).update(
        state=ScheduledSend.State.CANCELLED
    )
    grown = replace_blob(message, raw)
    Message.objects.filter(id=message.id).update(received_at=now, **fields)
    Mailbox.objects.filter(id=mailbox.id).update(used_bytes=F("used_bytes") + grown)
    return message


def discard_draft(draft: Message) -> None:
    """Delete a draft (and its pending scheduled sends) for good."""
    if ScheduledSend.objects.filter(draft=draft, state=ScheduledSend.State.SENDING).exists():
        raise ComposeError("This message is being sent.")
    if not draft.is_draft:
        raise ComposeError("Only drafts can be discarded.")
    delete_permanently([draft])


def push_folder_counts(
    mailbox_id: int, folder_ids: list[int], event: str, message_ids: list[int], target: int
) -> None:
    counts = [
        {"id": row["id"], "total": row["total_count"], "unread": row["unread_count"]}
        for row in Folder.objects.filter(id__in=folder_ids)
        .order_by("id")
        .values("id", "total_count", "unread_count")
    ]
    users = mailbox_user_ids([mailbox_id]).get(mailbox_id, ())
    payload = {
        "event": event,
        "mailbox_id": mailbox_id,
        "message_ids": message_ids,
        "folder_id": target,
        "folders": counts,
    }
    push_on_commit([Push(users, payload)])
