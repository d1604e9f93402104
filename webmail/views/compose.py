"""Writing mail: the compose page, autosave, uploads, sending, undo send."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from mailcore import access
from mailcore.models import Folder, Message, User
from mailcore.services.compose_mime import ComposeError, DraftContent, format_address_list
from webmail import access as webmail_access
from webmail.forms import ComposeForm
from webmail.models import ScheduledSend
from webmail.services import compose, drafts
from webmail.services.preferences import Sender, get_preferences, senders_for_user
from webmail.views.common import done, refused, render_app, user_of, wants_json

REPLY_MODES = ("reply", "reply_all", "forward")


def _initial(user: User, request: HttpRequest, senders: list[Sender]) -> dict[str, Any]:
    """The form's first values: a reply/forward, a saved draft, ``?to=``, or a blank page."""
    preferences = get_preferences(user)
    mine = {s.address.lower() for s in senders}
    start = drafts.ComposeStart()
    draft_id = request.GET.get("draft", "")
    source_id = request.GET.get("source", "")
    mode = request.GET.get("mode", "reply")
    draft = None
    if draft_id.isdigit():
        draft = access.get_message_for_user(user, int(draft_id))
        start = drafts.open_draft(draft) if draft.is_draft else start
    elif source_id.isdigit() and mode in REPLY_MODES:
        source = access.get_message_for_user(user, int(source_id))
        start = drafts.start_reply(source, mode=mode, mine=mine, signature=preferences.signature)
    elif preferences.signature.strip():
        start.body = f"\n\n-- \n{preferences.signature.strip()}"
    sender_key = senders[0].key
    for sender in senders:
        if sender.address == start.from_address:
            sender_key = sender.key
            break
    return {
        "sender": sender_key,
        "to": format_address_list(start.to) or request.GET.get("to", ""),
        "cc": format_address_list(start.cc),
        "bcc": format_address_list(start.bcc),
        "subject": start.subject,
        "body": start.body,
        "draft": draft.id if draft is not None and draft.is_draft else None,
        "in_reply_to": start.in_reply_to,
        "references": " ".join(start.references),
        "_attachments": _attachment_rows(user, start.attachment_ids),
    }


def _attachment_rows(user: User, attachment_ids: list[int]) -> list[dict[str, Any]]:
    rows = []
    for attachment_id in attachment_ids:
        found = access.get_attachment_for_user(user, attachment_id)
        rows.append({"token": f"a:{found.id}", "filename": found.filename, "size": found.size})
    return rows


def _render_form(
    request: HttpRequest, form: ComposeForm, attachments: list[dict[str, Any]], status: int = 200
) -> HttpResponse:
    return render_app(
        request,
        "webmail/compose.html",
        {"form": form, "attachments": attachments, "title": "Compose"},
        status=status,
    )


def _content(
    user: User, form: ComposeForm, senders: list[Sender], tokens: list[str]
) -> tuple[DraftContent, Sender, Message | None]:
    sender = {s.key: s for s in senders}[form.cleaned_data["sender"]]
    draft = None
    if form.cleaned_data.get("draft"):
        draft = access.get_message_for_user(user, form.cleaned_data["draft"])
        if not draft.is_draft:
            raise ComposeError("This draft has already been sent.")
    attachments = drafts.resolve_attachments(user, tokens)
    if draft is not None and draft.mailbox_id != sender.mailbox.id:
        drafts.discard_draft(draft)  # the From moved to another mailbox: so does the draft
        draft = None
    content = DraftContent(
        from_name=sender.name,
        from_address=sender.address,
        to=form.cleaned_data["to"],
        cc=form.cleaned_data["cc"],
        bcc=form.cleaned_data["bcc"],
        subject=form.cleaned_data["subject"],
        body=form.cleaned_data["body"],
        attachments=attachments,
        in_reply_to=form.cleaned_data["in_reply_to"].strip("<>"),
        references=form.references_list(),
    )
    return content, sender, draft


def _tokens(request: HttpRequest, user: User) -> list[str]:
    """Attachment tokens of the form, plus files posted with it (the no-script path)."""
    tokens = [t for t in request.POST.getlist("attachment") if t]
    for upload in request.FILES.getlist("files"):
        stored = drafts.store_upload(
            user,
            upload.name or "attachment",
            upload.content_type or "",
            upload.read(),
            settings.MAILROOM_MAX_MESSAGE_SIZE,
        )
        tokens.append(f"u:{stored.id}")
    return tokens


def _attachment_list(message: Message) -> list[dict[str, Any]]:
    return [
        {"token": f"a:{a.id}", "filename": a.filename, "size": a.size}
        for a in message.attachments.filter(is_inline=False).order_by("id")
    ]


@login_required
def compose_page(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    senders = senders_for_user(user)
    if not senders:
        return render(request, "webmail/no_mailbox.html")
    if request.method != "POST":
        initial = _initial(user, request, senders)
        attachments = initial.pop("_attachments")
        return _render_form(request, ComposeForm(initial=initial, senders=senders), attachments)
    action = request.POST.get("action", "send")
    form = ComposeForm(request.POST, senders=senders, lenient=action != "send")
    tokens = _tokens(request, user)
    pending = [_token_row(user, t) for t in tokens]
    if not form.is_valid():
        return _render_form(request, form, pending, status=400)
    try:
        content, sender, draft = _content(user, form, senders, tokens)
        if action == "discard":
            if draft is not None:
                drafts.discard_draft(draft)
            return done(request, "Draft discarded.", fallback=reverse("webmail:index"))
        if action == "save":
            saved = drafts.save_draft(sender.mailbox, content, draft=draft)
            return done(
                request,
                "Draft saved.",
                fallback=reverse("webmail:compose") + "?" + urlencode({"draft": saved.id}),
            )
        return _send(request, user, form, content, sender, draft)
    except ComposeError as exc:
        form.add_error(None, str(exc))
        return _render_form(request, form, pending, status=400)


def _token_row(user: User, token: str) -> dict[str, Any]:
    kind, _, number = token.partition(":")
    if kind == "u" and number.isdigit():
        upload = webmail_access.get_upload_for_user(user, int(number))
        return {"token": token, "filename": upload.filename, "size": upload.size}
    if kind == "a" and number.isdigit():
        found = access.get_attachment_for_user(user, int(number))
        return {"token": token, "filename": found.filename, "size": found.size}
    return {"token": token, "filename": token, "size": 0}


def _send(
    request: HttpRequest,
    user: User,
    form: ComposeForm,
    content: DraftContent,
    sender: Sender,
    draft: Message | None,
) -> HttpResponse:
    preferences = get_preferences(user)
    later = form.scheduled_time()
    now = timezone.now()
    send_at = later or now + timedelta(seconds=preferences.undo_send_seconds)
    scheduled = compose.schedule_send(user, sender.mailbox, content, draft=draft, send_at=send_at)
    if send_at <= now:
        compose.send_due_messages(ids=[scheduled.id])
        scheduled.refresh_from_db()
        if scheduled.state == ScheduledSend.State.FAILED:
            raise ComposeError(scheduled.error)
    inbox = access.folders_for_user(user).filter(mailbox=sender.mailbox, role=Folder.Role.INBOX)
    target = reverse("webmail:folder", args=[inbox.values_list("id", flat=True).first()])
    if scheduled.state == ScheduledSend.State.PENDING:
        target += "?" + urlencode({"scheduled": scheduled.id})
    return redirect(target)


@login_required
@require_POST
def autosave(request: HttpRequest) -> JsonResponse:
    """Save the draft being written (every few seconds and when the page closes)."""
    user = user_of(request)
    senders = senders_for_user(user)
    form = ComposeForm(request.POST, senders=senders, lenient=True)
    if not senders or not form.is_valid():
        return JsonResponse({"ok": False, "errors": form.errors.get_json_data()}, status=400)
    try:
        content, sender, draft = _content(user, form, senders, _tokens(request, user))
        has_text = content.to or content.cc or content.bcc or content.subject.strip()
        if draft is None and not (has_text or content.attachments or _has_own_words(content)):
            return JsonResponse({"ok": True, "draft": None})
        saved = drafts.save_draft(sender.mailbox, content, draft=draft)
    except ComposeError as exc:
        return JsonResponse({"ok": False, "error": str(exc)}, status=409)
    return JsonResponse(
        {
            "ok": True,
            "draft": saved.id,
            "attachments": _attachment_list(saved),
            "saved_at": timezone.now().isoformat(),
        }
    )


def _has_own_words(content: DraftContent) -> bool:
    body = content.body.split("\n-- \n", 1)[0]
    return bool(body.strip())


@login_required
@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    file = request.FILES.get("file")
    if file is None:
        return JsonResponse({"ok": False, "error": "No file."}, status=400)
    try:
        stored = drafts.store_upload(
            user_of(request),
            file.name or "attachment",
            file.content_type or "",
            file.read(),
            settings.MAILROOM_MAX_MESSAGE_SIZE,
        )
    except ComposeError as exc:
        return JsonResponse({"ok": False, "error": str(exc)}, status=413)
    return JsonResponse(
        {"ok": True, "token": f"u:{stored.id}", "filename": stored.filename, "size": stored.size}
    )


@login_required
@require_POST
def scheduled_cancel(request: HttpRequest, scheduled_id: int) -> HttpResponse:
    """Undo send: the message goes back to the compose page as a draft."""
    scheduled = webmail_access.get_scheduled_send_for_user(user_of(request), scheduled_id)
    if not compose.cancel_scheduled(scheduled):
        return refused(request, "Too late: the message has been sent.", fallback="/", status=409)
    url = reverse("webmail:compose") + "?" + urlencode({"draft": scheduled.draft_id})
    if wants_json(request):
        return JsonResponse({"ok": True, "message": "Sending undone.", "compose_url": url})
    return redirect(url)


@login_required
@require_POST
def scheduled_send_now(request: HttpRequest, scheduled_id: int) -> HttpResponse:
    """Send a scheduled message now (the page calls this when the undo window closes)."""
    scheduled = webmail_access.get_scheduled_send_for_user(user_of(request), scheduled_id)
    now = max(timezone.now(), scheduled.send_at)
    compose.send_due_messages(ids=[scheduled.id], now=now)
    scheduled.refresh_from_db()
    ok = scheduled.state == ScheduledSend.State.SENT
    text = "Message sent." if ok else (scheduled.error or f"Message {scheduled.state}.")
    if wants_json(request):
        return JsonResponse({"ok": ok, "state": scheduled.state, "message": text})
    return done(request, text, fallback=reverse("webmail:index"))
