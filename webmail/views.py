from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from mailcore import access
from mailcore.models import Folder
from webmail.forms import LoginForm


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "webmail/login.html"
    redirect_authenticated_user = True


@login_required
def index(request: HttpRequest) -> HttpResponse:
    inbox = (
        access.folders_for_user(request.user)
        .filter(role=Folder.Role.INBOX, mailbox__user=request.user)
        .first()
    )
    if inbox is None:
        return render(request, "webmail/no_mailbox.html")
    return redirect("webmail:folder", folder_id=inbox.id)


@login_required
def folder(request: HttpRequest, folder_id: int) -> HttpResponse:
    current = access.get_folder_for_user(request.user, folder_id)
    folders = access.folders_for_user(request.user).filter(mailbox=current.mailbox).order_by("id")
    messages = current.messages.order_by("-received_at", "-id")[:50]
    return render(
        request,
        "webmail/folder.html",
        {"folder": current, "folders": folders, "messages": messages},
    )


@login_required
def message(request: HttpRequest, message_id: int) -> HttpResponse:
    found = access.get_message_for_user(request.user, message_id)
    from mailcore import mime

    parsed = mime.parse_message(bytes(found.blob.data))
    return render(request, "webmail/message.html", {"message": found, "text": parsed.text})
