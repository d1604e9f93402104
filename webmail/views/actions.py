"""Changing messages from the list or a conversation: flags, moves, labels, undo, emptying."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from mailcore import access
from mailcore.models import Folder
from mailcore.services import messages as service
from webmail.forms import LabelForm
from webmail.views.common import done, refused, user_of

MOVES = {
    "archive": (Folder.Role.ARCHIVE, "Archived"),
    "trash": (Folder.Role.TRASH, "Moved to Trash"),
    "spam": (Folder.Role.JUNK, "Reported as spam"),
    "inbox": (Folder.Role.INBOX, "Moved to Inbox"),
}
FLAGS = {
    "read": ("is_seen", True, "Marked as read"),
    "unread": ("is_seen", False, "Marked as unread"),
    "flag": ("is_flagged", True, "Starred"),
    "unflag": ("is_flagged", False, "Unstarred"),
}


def _count(n: int) -> str:
    return "1 message" if n == 1 else f"{n} messages"


@login_required
@require_POST
def act(request: HttpRequest) -> HttpResponse:
    """One action on a selection: ``ids`` (repeated), ``action``, and ``folder``/``label``."""
    user = user_of(request)
    fallback = reverse("webmail:index")
    ids = {int(value) for value in request.POST.getlist("ids") if value.isdigit()}
    action = request.POST.get("action", "")
    if not ids:
        return refused(request, "Select at least one message.", fallback=fallback)
    selected = access.get_messages_for_user(user, ids)
    try:
        if action in FLAGS:
            field, value, text = FLAGS[action]
            setter = service.set_seen if field == "is_seen" else service.set_flagged
            setter(selected, value)
            return done(request, f"{text}: {_count(len(selected))}.", fallback=fallback)
        if action in MOVES:
            role, text = MOVES[action]
            result = service.move_to_role(user, selected, role)
            return done(
                request,
                f"{text}: {_count(len(result.moved))}.",
                fallback=fallback,
                undo=result.undo_token if result.moved else None,
            )
        if action == "move":
            folder_id = request.POST.get("folder", "")
            target = access.get_folder_for_user(user, int(folder_id) if folder_id.isdigit() else 0)
            result = service.move_messages(user, selected, target)
            return done(
                request,
                f"Moved {_count(len(result.moved))} to {target.name}.",
                fallback=fallback,
                undo=result.undo_token if result.moved else None,
            )
        if action == "delete":
            deleted = service.delete_permanently(selected)
            return done(request, f"Deleted {_count(deleted)} forever.", fallback=fallback)
        if action in ("label", "unlabel"):
            label_id = request.POST.get("label", "")
            label = access.get_label_for_user(user, int(label_id) if label_id.isdigit() else 0)
            service.set_label(selected, label, action == "label")
            verb = "Labelled" if action == "label" else "Removed label from"
            return done(
                request, f"{verb} {_count(len(selected))}: {label.name}.", fallback=fallback
            )
    except service.MessageActionError as exc:
        return refused(request, str(exc), fallback=fallback)
    return refused(request, "Unknown action.", fallback=fallback)


@login_required
@require_POST
def undo(request: HttpRequest) -> HttpResponse:
    try:
        restored = service.undo_move(user_of(request), request.POST.get("token", ""))
    except service.MessageActionError as exc:
        return refused(request, str(exc), fallback=reverse("webmail:index"))
    return done(request, f"Undone: {_count(restored)} put back.", fallback=reverse("webmail:index"))


@login_required
@require_POST
def empty_folder(request: HttpRequest, folder_id: int) -> HttpResponse:
    folder = access.get_folder_for_user(user_of(request), folder_id)
    fallback = reverse("webmail:folder", args=[folder.id])
    try:
        deleted = service.empty_folder(folder)
    except service.MessageActionError as exc:
        return refused(request, str(exc), fallback=fallback)
    return done(request, f"{folder.name} emptied: {_count(deleted)} deleted.", fallback=fallback)


@login_required
@require_POST
def label_create(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    fallback = reverse("webmail:settings")
    form = LabelForm(request.POST)
    if not form.is_valid():
        return refused(request, _form_errors(form), fallback=fallback)
    mailbox_id = form.cleaned_data.get("mailbox")
    own = access.mailboxes_for_user(user).filter(user=user).first()
    mailbox = access.get_mailbox_for_user(user, mailbox_id) if mailbox_id else own
    if mailbox is None:
        return refused(request, "You have no mailbox.", fallback=fallback)
    try:
        label = service.create_label(mailbox, form.cleaned_data["name"], form.cleaned_data["color"])
    except service.MessageActionError as exc:
        return refused(request, str(exc), fallback=fallback)
    return done(
        request, f"Label {label.name} created.", fallback=fallback, extra={"label": label.id}
    )


@login_required
@require_POST
def label_update(request: HttpRequest, label_id: int) -> HttpResponse:
    label = access.get_label_for_user(user_of(request), label_id)
    fallback = reverse("webmail:settings")
    if request.POST.get("delete"):
        service.delete_label(label)
        return done(request, f"Label {label.name} deleted.", fallback=fallback)
    form = LabelForm(request.POST)
    if not form.is_valid():
        return refused(request, _form_errors(form), fallback=fallback)
    try:
        service.update_label(label, form.cleaned_data["name"], form.cleaned_data["color"])
    except service.MessageActionError as exc:
        return refused(request, str(exc), fallback=fallback)
    return done(request, f"Label {label.name} saved.", fallback=fallback)


def _form_errors(form: LabelForm) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)
