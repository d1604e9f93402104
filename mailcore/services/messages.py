"""Changing stored messages: flags, moves, labels, permanent deletion.

Every function takes messages the caller already got through :mod:`mailcore.access`, owns its
transaction, keeps ``Folder.total_count``/``unread_count`` right with ``F()`` updates, and
pushes the change after commit to every user who can see the mailbox (other tabs update).
Rows are locked in id order (mailboxes, then messages, then folders) so concurrent changes and
inbound delivery cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mailcore import access, mime
from mailcore.models import (
    Blob,
    Folder,
    Label,
    Mailbox,
    MailboxGrant,
    Message,
    OutboundMessage,
    Thread,
    User,
)
from mailcore.services.realtime import Push, push_on_commit

UNDO_SALT = "mailcore.messages.undo"
UNDO_MAX_AGE = 3600


class MessageActionError(ValueError):
    """A request that cannot be carried out; the text is shown to the user."""


@dataclass(frozen=True, slots=True)
class MoveResult:
    moved: list[tuple[int, int]]  # (message id, folder it was in)
    undo_token: str


def message_fields(parsed: mime.ParsedMessage, raw: bytes) -> dict[str, Any]:
    """The columns of a message row that come from its parsed header and size (inbound mail,
    drafts and Sent copies alike)."""
    sender = parsed.from_address
    return {
        "in_reply_to": parsed.in_reply_to[:255],
        "references": [ref[:255] for ref in parsed.references],
        "subject": parsed.subject,
        "from_name": (sender.name if sender else "")[:255],
        "from_address": (sender.address if sender else "")[:254],
        "to_addresses": [[a.name, a.address] for a in parsed.to[:100]],
        "cc_addresses": [[a.name, a.address] for a in parsed.cc[:100]],
        "sent_at": parsed.date,
        "size": len(raw),
        "snippet": parsed.snippet[:300],
        "has_attachments": any(not a.is_inline for a in parsed.attachments),
    }


def mailbox_user_ids(mailbox_ids: Iterable[int]) -> dict[int, tuple[int, ...]]:
    """Who sees each mailbox: the owner, then the users it is shared with."""
    ids = sorted(set(mailbox_ids))
    owners = dict(Mailbox.objects.filter(id__in=ids).values_list("id", "user_id"))
    shared: dict[int, list[int]] = defaultdict(list)
    for mailbox_id, user_id in MailboxGrant.objects.filter(mailbox_id__in=ids).values_list(
        "mailbox_id", "user_id"
    ):
        shared[mailbox_id].append(user_id)
    return {m: (owners[m], *sorted(shared[m])) for m in ids if m in owners}


def _lock(message_ids: Iterable[int], *fields: str) -> list[dict[str, Any]]:
    return list(
        Message.objects.select_for_update(of=("self",))
        .filter(id__in=set(message_ids))
        .order_by("id")
        .values("id", "mailbox_id", "folder_id", "is_seen", *fields)
    )


def _apply_folder_deltas(deltas: dict[int, list[int]]) -> dict[int, dict[str, int]]:
    """Add (total, unread) deltas to folders; returns the new counts of every folder touched."""
    for folder_id in sorted(deltas):
        total, unread = deltas[folder_id]
        if total or unread:
            Folder.objects.filter(id=folder_id).update(
                total_count=F("total_count") + total, unread_count=F("unread_count") + unread
            )
    return {
        row["id"]: {"id": row["id"], "total": row["total_count"], "unread": row["unread_count"]}
        for row in Folder.objects.filter(id__in=deltas).values("id", "total_count", "unread_count")
    }


def _push(rows: list[dict[str, Any]], counts: dict[int, dict[str, int]], **payload: Any) -> None:
    by_mailbox: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_mailbox[row["mailbox_id"]].append(row)
    folders_by_mailbox: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        folders_by_mailbox[row["mailbox_id"]].add(row["folder_id"])
        if "to_folder_id" in row:
            folders_by_mailbox[row["mailbox_id"]].add(row["to_folder_id"])
    users = mailbox_user_ids(by_mailbox)
    pushes = [
        Push(
            users[mailbox_id],
            {
                **payload,
                "mailbox_id": mailbox_id,
                "message_ids": [row["id"] for row in mailbox_rows],
                "folders": [
                    counts[f] for f in sorted(folders_by_mailbox[mailbox_id]) if f in counts
                ],
            },
        )
        for mailbox_id, mailbox_rows in sorted(by_mailbox.items())
        if mailbox_id in users
    ]
    push_on_commit(pushes)


def set_seen(messages: Sequence[Message], is_seen: bool) -> int:
    """Mark read (or unread); returns how many messages changed."""
    with transaction.atomic():
        rows = [row for row in _lock(m.id for m in messages) if row["is_seen"] != is_seen]
        if not rows:
            return 0
        Message.objects.filter(id__in=[row["id"] for row in rows]).update(is_seen=is_seen)
        deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for row in rows:
            deltas[row["folder_id"]][1] += -1 if is_seen else 1
        counts = _apply_folder_deltas(deltas)
        _push(rows, counts, event="flags", is_seen=is_seen)
    return len(rows)


def set_flagged(messages: Sequence[Message], is_flagged: bool) -> int:
    """Star (or unstar); returns how many messages changed."""
    with transaction.atomic():
        rows = [
            row
            for row in _lock((m.id for m in messages), "is_flagged")
            if row["is_flagged"] != is_flagged
        ]
        if not rows:
            return 0
        Message.objects.filter(id__in=[row["id"] for row in rows]).update(is_flagged=is_flagged)
        _push(rows, {}, event="flags", is_flagged=is_flagged)
    return len(rows)


def _move_rows(rows: list[dict[str, Any]]) -> dict[int, dict[str, int]]:
    """Move locked ``rows`` to their ``to_folder_id``; returns the new folder counts."""
    by_target: dict[int, list[int]] = defaultdict(list)
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        by_target[row["to_folder_id"]].append(row["id"])
        unread = 0 if row["is_seen"] else 1
        deltas[row["folder_id"]][0] -= 1
        deltas[row["folder_id"]][1] -= unread
        deltas[row["to_folder_id"]][0] += 1
        deltas[row["to_folder_id"]][1] += unread
    now = timezone.now()
    for folder_id, ids in sorted(by_target.items()):
        Message.objects.filter(id__in=ids).update(folder_id=folder_id, moved_at=now)
    return _apply_folder_deltas(deltas)


def _undo_token(user: User, moved: list[tuple[int, int]]) -> str:
    return signing.dumps({"u": user.pk, "m": moved}, salt=UNDO_SALT, compress=True)


def move_messages(user: User, messages: Sequence[Message], folder: Folder) -> MoveResult:
    """Move ``messages`` into ``folder``, which must be in the same mailbox as each of them."""
    return _move(user, messages, lambda mailbox_id: folder.id, {folder.mailbox_id})


def move_to_role(user: User, messages: Sequence[Message], role: Folder.Role) -> MoveResult:
    """Archive, trash or report as spam: move each message to its mailbox's ``role`` folder."""
    mailbox_ids = {m.mailbox_id for m in messages}
    targets = dict(
        Folder.objects.filter(mailbox_id__in=mailbox_ids, role=role).values_list("mailbox_id", "id")
    )
    if len(targets) != len(mailbox_ids):
        raise MessageActionError(f"This mailbox has no {role.label} folder.")
    return _move(user, messages, targets.__getitem__, mailbox_ids)


def _move(
    user: User,
    messages: Sequence[Message],
    target_of: Any,
    allowed_mailboxes: set[int],
) -> MoveResult:
    if any(m.mailbox_id not in allowed_mailboxes for m in messages):
        raise MessageActionError("Messages can only be moved within their own mailbox.")
    with transaction.atomic():
        rows = []
        for row in _lock(m.id for m in messages):
            row["to_folder_id"] = target_of(row["mailbox_id"])
            if row["to_folder_id"] != row["folder_id"]:
                rows.append(row)
        if not rows:
            return MoveResult([], _undo_token(user, []))
        counts = _move_rows(rows)
        target_ids = sorted({row["to_folder_id"] for row in rows})
        _push(rows, counts, event="moved", folder_id=target_ids[0] if len(target_ids) == 1 else 0)
    moved = [(row["id"], row["folder_id"]) for row in rows]
    return MoveResult(moved, _undo_token(user, moved))


def undo_move(user: User, token: str) -> int:
    """Put messages back where a move took them from; returns how many went back.

    The token is signed and bound to ``user``; messages the user can no longer see, or whose
    old folder is gone, stay where they are.
    """
    try:
        data = signing.loads(token, salt=UNDO_SALT, max_age=UNDO_MAX_AGE)
    except signing.BadSignature as exc:
        raise MessageActionError("This action can no longer be undone.") from exc
    if data.get("u") != user.pk:
        raise MessageActionError("This action can no longer be undone.")
    previous = {int(message_id): int(folder_id) for message_id, folder_id in data["m"]}
    visible = set(
        access.messages_for_user(user).filter(id__in=previous).values_list("id", flat=True)
    )
    folders = dict(
        access.folders_for_user(user)
        .filter(id__in=previous.values())
        .values_list("id", "mailbox_id")
    )
    with transaction.atomic():
        rows = []
        for row in _lock(visible):
            target = previous[row["id"]]
            if folders.get(target) == row["mailbox_id"] and target != row["folder_id"]:
                row["to_folder_id"] = target
                rows.append(row)
        if not rows:
            return 0
        counts = _move_rows(rows)
        _push(rows, counts, event="moved", folder_id=0)
    return len(rows)


def delete_permanently(messages: Sequence[Message]) -> int:
    """Delete messages for good: rows, attachments, unshared blobs; quota and counts shrink."""
    return _delete(Q(id__in=[m.id for m in messages]), {m.mailbox_id for m in messages})


def empty_folder(folder: Folder) -> int:
    """Delete every message in ``folder`` (Trash or Junk) for good."""
    if folder.role not in (Folder.Role.TRASH, Folder.Role.JUNK):
        raise MessageActionError("Only Trash and Junk can be emptied.")
    return _delete(Q(folder_id=folder.id), {folder.mailbox_id})


@dataclass(frozen=True, slots=True)
class Purged:
    messages: int = 0
    blobs: int = 0
    blob_bytes: int = 0  # raw bytes freed (blobs no longer referenced)


def _delete(condition: Q, mailbox_ids: set[int]) -> int:
    return purge_messages(condition, mailbox_ids).messages


def purge_messages(condition: Q, mailbox_ids: set[int], *, skip_locked: bool = False) -> Purged:
    """Delete the messages of ``mailbox_ids`` matching ``condition``, in one transaction.

    Quota (``used_bytes``), folder and thread counts shrink; blobs nobody references any more
    are deleted. With ``skip_locked`` (retention), mailboxes and messages locked by someone
    else are left for a later call instead of waited for.
    """
    with transaction.atomic():
        locked = list(
            Mailbox.objects.select_for_update(skip_locked=skip_locked)
            .filter(id__in=mailbox_ids)
            .order_by("id")
            .values_list("id", flat=True)
        )
        rows: list[dict[str, Any]] = [
            dict(row)
            for row in Message.objects.select_for_update(of=("self",), skip_locked=skip_locked)
            .filter(condition, mailbox_id__in=locked)
            .order_by("id")
            .values("id", "mailbox_id", "folder_id", "is_seen", "size", "blob_id", "thread_id")
        ]
        if not rows:
            return Purged()
        deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        freed: dict[int, int] = defaultdict(int)
        threads: dict[int, int] = defaultdict(int)
        for row in rows:
            deltas[row["folder_id"]][0] -= 1
            deltas[row["folder_id"]][1] -= 0 if row["is_seen"] else 1
            freed[row["mailbox_id"]] += row["size"]
            if row["thread_id"]:
                threads[row["thread_id"]] += 1
        Message.objects.filter(id__in=[row["id"] for row in rows]).delete()
        blobs = delete_unreferenced_blobs({row["blob_id"] for row in rows})
        for mailbox_id, size in sorted(freed.items()):
            Mailbox.objects.filter(id=mailbox_id).update(used_bytes=F("used_bytes") - size)
        for thread_id, count in sorted(threads.items()):
            Thread.objects.filter(id=thread_id).update(message_count=F("message_count") - count)
        Thread.objects.filter(id__in=threads, message_count__lte=0).delete()
        counts = _apply_folder_deltas(deltas)
        _push(rows, counts, event="deleted")
    return Purged(len(rows), *blobs)


def delete_unreferenced_blobs(blob_ids: set[int]) -> tuple[int, int]:
    """Delete those of ``blob_ids`` no message (stored or outbound) uses; (count, bytes)."""
    if not blob_ids:
        return 0, 0
    used = set(Message.objects.filter(blob_id__in=blob_ids).values_list("blob_id", flat=True))
    used.update(
        OutboundMessage.objects.filter(blob_id__in=blob_ids).values_list("blob_id", flat=True)
    )
    unused = Blob.objects.filter(id__in=blob_ids - used)
    sizes = list(unused.values_list("size", flat=True))
    if sizes:
        unused.delete()
    return len(sizes), sum(sizes)


# --- Labels -------------------------------------------------------------------------------------


def create_label(mailbox: Mailbox, name: str, color: str) -> Label:
    name = name.strip()
    if not name:
        raise MessageActionError("A label needs a name.")
    with transaction.atomic():
        if Label.objects.filter(mailbox=mailbox, name__iexact=name).exists():
            raise MessageActionError(f"There is already a label named {name!r}.")
        return Label.objects.create(
            organization_id=mailbox.organization_id, mailbox=mailbox, name=name, color=color
        )


def update_label(label: Label, name: str, color: str) -> Label:
    name = name.strip()
    if not name:
        raise MessageActionError("A label needs a name.")
    with transaction.atomic():
        clash = Label.objects.filter(mailbox_id=label.mailbox_id, name__iexact=name)
        if clash.exclude(id=label.id).exists():
            raise MessageActionError(f"There is already a label named {name!r}.")
        label.name, label.color = name, color
        label.save(update_fields=["name", "color"])
    return label


def delete_label(label: Label) -> None:
    label.delete()


def set_label(messages: Sequence[Message], label: Label, is_applied: bool) -> int:
    """Add ``label`` to (or remove it from) messages of its mailbox; returns how many changed."""
    if any(m.mailbox_id != label.mailbox_id for m in messages):
        raise MessageActionError("A label belongs to one mailbox.")
    through = Message.labels.through
    ids = [m.id for m in messages]
    with transaction.atomic():
        present = set(
            through.objects.filter(label_id=label.id, message_id__in=ids).values_list(
                "message_id", flat=True
            )
        )
        if is_applied:
            changed = [i for i in ids if i not in present]
            through.objects.bulk_create(
                [through(label_id=label.id, message_id=i) for i in changed],
                ignore_conflicts=True,
            )
        else:
            changed = sorted(present)
            through.objects.filter(label_id=label.id, message_id__in=changed).delete()
        if changed:
            users = mailbox_user_ids([label.mailbox_id])[label.mailbox_id]
            push_on_commit(
                [
                    Push(
                        users,
                        {
                            "event": "labels",
                            "mailbox_id": label.mailbox_id,
                            "message_ids": changed,
                            "label_id": label.id,
                            "is_applied": is_applied,
                        },
                    )
                ]
            )
    return len(changed)
