"""Message lists: folders, labels, search results; their live refresh and the counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from mailcore import access
from mailcore.models import Folder, Label, Message
from webmail import access as webmail_access
from webmail.models import ScheduledSend
from webmail.pagination import keyset_page, newer_than
from webmail.services.preferences import get_preferences
from webmail.views.common import render_app, user_of

LIST_FIELDS = (
    *("id", "mailbox_id", "folder_id", "thread_id", "received_at", "subject", "from_name"),
    *("from_address", "to_addresses", "snippet", "is_seen", "is_flagged", "is_answered"),
    *("is_draft", "has_attachments"),
)


def list_queryset(queryset: QuerySet[Message]) -> QuerySet[Message]:
    """The list's columns; labels as a plain list ``list_labels`` (a prefetch into the related
    manager builds a queryset per row, the largest cost of a page after its rendering)."""
    labels = Prefetch("labels", Label.objects.only("id", "name", "color"), to_attr="list_labels")
    return queryset.only(*LIST_FIELDS).prefetch_related(labels)


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    inboxes = access.folders_for_user(user_of(request)).filter(role=Folder.Role.INBOX)
    inbox = inboxes.filter(mailbox__user=user_of(request)).first() or inboxes.order_by("id").first()
    if inbox is None:
        return render(request, "webmail/no_mailbox.html")
    return redirect("webmail:folder", folder_id=inbox.id)


def _list_page(
    request: HttpRequest, queryset: QuerySet[Message], context: dict[str, Any]
) -> HttpResponse:
    preferences = get_preferences(user_of(request))
    page = keyset_page(
        list_queryset(queryset),
        before=request.GET.get("before"),
        after=request.GET.get("after"),
        size=preferences.page_size,
    )
    context.update(page=page, is_first_page=page.newer is None)
    scheduled_id = request.GET.get("scheduled", "")
    if scheduled_id.isdigit():
        scheduled = webmail_access.get_scheduled_send_for_user(user_of(request), int(scheduled_id))
        if scheduled.state == ScheduledSend.State.PENDING:
            context["scheduled"] = scheduled
            context["scheduled_later"] = scheduled.send_at > timezone.now() + timedelta(minutes=1)
    context["undo_token"] = request.session.pop("webmail_undo", None)
    return render_app(request, "webmail/list.html", context)


@login_required
@require_GET
def folder(request: HttpRequest, folder_id: int) -> HttpResponse:
    current = access.get_folder_for_user(user_of(request), folder_id)
    return _list_page(
        request,
        Message.objects.filter(folder_id=current.id),
        {"folder": current, "title": current.name, "list_url": request.path},
    )


@login_required
@require_GET
def label(request: HttpRequest, label_id: int) -> HttpResponse:
    current = access.get_label_for_user(user_of(request), label_id)
    queryset = Message.objects.filter(mailbox_id=current.mailbox_id, labels=current).exclude(
        folder__role__in=[Folder.Role.TRASH, Folder.Role.JUNK]
    )
    return _list_page(
        request, queryset, {"label": current, "title": current.name, "list_url": request.path}
    )


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    scope: dict[str, Any] = {}
    mailbox_id, folder_id = request.GET.get("mailbox", ""), request.GET.get("folder", "")
    if mailbox_id.isdigit():
        scope["mailbox"] = access.get_mailbox_for_user(user_of(request), int(mailbox_id))
    if folder_id.isdigit():
        scope["folder"] = access.get_folder_for_user(user_of(request), int(folder_id))
    context: dict[str, Any] = {
        "query": query,
        "title": f"Search: {query}",
        "list_url": request.path,
    }
    if not query:
        return _list_page(request, Message.objects.none(), context)
    try:
        # Imported here: the search package is built alongside and may be missing for a while.
        from mailcore.search import search_messages
    except ImportError:
        context["list_error"] = "Search is not available yet."
        return _list_page(request, Message.objects.none(), context)
    try:
        results = search_messages(user_of(request), query, **scope)
    except ValueError as exc:
        context["list_error"] = f"Could not understand the search: {exc}"
        return _list_page(request, Message.objects.none(), context)
    return _list_page(request, results, context)


@login_required
@require_GET
def folder_rows(request: HttpRequest, folder_id: int) -> JsonResponse:
    """Rows for a live list: those above ``after`` (new mail), or a fresh first page."""
    current = access.get_folder_for_user(user_of(request), folder_id)
    preferences = get_preferences(user_of(request))
    queryset = list_queryset(Message.objects.filter(folder_id=current.id))
    after = request.GET.get("after")
    if after:
        rows = newer_than(queryset, after, preferences.page_size)
        older = None
    else:
        page = keyset_page(queryset, before=None, after=None, size=preferences.page_size)
        rows, older = page.items, page.older
    html = render_to_string(
        "webmail/_rows.html", {"messages": rows, "folder": current}, request=request
    )
    newest = rows[0] if rows else None
    return JsonResponse(
        {
            "html": html,
            "count": len(rows),
            "older": older,
            "newest": {
                "from": newest.from_name or newest.from_address,
                "subject": newest.subject,
            }
            if newest
            else None,
        }
    )


@login_required
@require_GET
def state(request: HttpRequest) -> JsonResponse:
    """Counts of every folder the user sees: what a reconnecting page catches up with."""
    folders = access.folders_for_user(user_of(request)).order_by("id")
    return JsonResponse(
        {
            "folders": [
                {"id": f["id"], "total": f["total_count"], "unread": f["unread_count"]}
                for f in folders.values("id", "total_count", "unread_count")
            ]
        }
    )
