"""Helpers shared by the webmail views."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from mailcore.models import User
from webmail.sidebar import build_sidebar


def user_of(request: HttpRequest) -> User:
    """The signed-in user (views that call this are behind ``login_required``)."""
    user = request.user
    assert isinstance(user, User)
    return user


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def next_url(request: HttpRequest, fallback: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


def render_app(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200):
    """Render a page of the app shell (folder and label lists included)."""
    if "sidebar" not in context:  # not setdefault: that would build it (two queries) anyway
        context["sidebar"] = build_sidebar(user_of(request))
    return render(request, template, context, status=status)


def done(
    request: HttpRequest,
    text: str,
    *,
    fallback: str,
    undo: str | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """Answer a POST: JSON for the page's script, a redirect with a notice without it."""
    if wants_json(request):
        return JsonResponse({"ok": True, "message": text, "undo": undo, **(extra or {})})
    messages.success(request, text)
    if undo:
        request.session["webmail_undo"] = undo
    return redirect(next_url(request, fallback))


def refused(request: HttpRequest, text: str, *, fallback: str, status: int = 400) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"ok": False, "error": text}, status=status)
    messages.error(request, text)
    return redirect(next_url(request, fallback))
