"""Tracking endpoints (public, signed), the live dashboard, stats and the operator console."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from analytics.access import analytics_scope_for_user, get_outbound_message_for_user
from analytics.models import DomainReputation, Event
from analytics.services import guardrails, stats, tracking
from analytics.services.search import EventQuery, message_timeline, search_events

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _client(request: HttpRequest) -> dict[str, str]:
    return {
        "user_agent": request.headers.get("User-Agent", ""),
        "ip": request.META.get("REMOTE_ADDR", ""),
    }


@never_cache
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    try:
        tracking.record_open(token, **_client(request))
    except tracking.InvalidToken as exc:
        raise Http404("Unknown image.") from exc
    response = HttpResponse(GIF, content_type="image/gif")
    response["Cross-Origin-Resource-Policy"] = "cross-origin"  # webmail on other origins
    return response


@never_cache
def click(request: HttpRequest, token: str) -> HttpResponse:
    try:
        url = tracking.record_click(token, **_client(request))
    except tracking.InvalidToken as exc:
        raise Http404("Unknown link.") from exc
    return HttpResponseRedirect(url)


@csrf_exempt  # RFC 8058: mail providers POST without a session or CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        tracking.read_token("unsubscribe", token)
    except tracking.InvalidToken as exc:
        raise Http404("Unknown link.") from exc
    if request.method == "GET":  # a person following the link: confirm first (scanners GET)
        return render(request, "analytics/unsubscribe.html", {"done": False})
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    try:
        tracking.unsubscribe(token, one_click=one_click, **_client(request))
    except tracking.InvalidToken as exc:
        raise Http404("Unknown link.") from exc
    return render(request, "analytics/unsubscribe.html", {"done": True})


def _requested_org(request: HttpRequest) -> int | None:
    value = request.GET.get("org", "").strip()
    return int(value) if value.isdigit() else None


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    scope = analytics_scope_for_user(request.user, _requested_org(request))
    domains = DomainReputation.objects.exclude(status="ok").order_by("-updated_at")
    if scope is not None:
        domains = domains.filter(organization_id=scope)
    return render(request, "analytics/dashboard.html", {"scope": scope, "domains": domains[:50]})


def _parse_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


@login_required
def event_search(request: HttpRequest) -> HttpResponse:
    scope = analytics_scope_for_user(request.user, _requested_org(request))
    message = request.GET.get("message", "").strip()
    query = EventQuery(
        organization_id=scope,
        recipient=request.GET.get("recipient", ""),
        message_id=int(message) if message.isdigit() else None,
        type=request.GET.get("type", ""),
        start=_parse_time(request.GET.get("start", "")),
        end=_parse_time(request.GET.get("end", "")),
    )
    events = search_events(query) if request.GET else []
    return render(
        request,
        "analytics/events.html",
        {"events": events, "query": query, "types": Event.Type.values, "scope": scope},
    )


class _StatsArgs(TypedDict):
    organization_id: int
    start: datetime
    end: datetime
    resolution: str
    domain: str | None
    tag: str | None
    event_types: list[str]


def _stats_args(request: HttpRequest) -> _StatsArgs:
    scope = analytics_scope_for_user(request.user, _requested_org(request))
    if scope is None:
        raise Http404("Choose an organization.")
    resolution = request.GET.get("resolution", "hour")
    if resolution not in stats.RESOLUTIONS:
        resolution = "hour"
    days = {"hour": 2, "day": 30, "month": 365}[resolution]
    now = timezone.now()
    return {
        "organization_id": scope,
        "start": _parse_time(request.GET.get("start", "")) or now - timedelta(days=days),
        "end": _parse_time(request.GET.get("end", "")) or now,
        "resolution": resolution,
        "domain": request.GET.get("domain") or None,
        "tag": request.GET.get("tag") or None,
        "event_types": ["sent", "delivered", "bounced", "complained", "opened", "clicked"],
    }


@login_required
def stats_page(request: HttpRequest) -> HttpResponse:
    args = _stats_args(request)
    return render(request, "analytics/stats.html", {"args": args, "scope": args["organization_id"]})


@login_required
def stats_json(request: HttpRequest) -> JsonResponse:
    rows = stats.event_counts(**_stats_args(request))
    return JsonResponse(
        {"buckets": [{"time": row["time"].isoformat(), **row["counts"]} for row in rows]}
    )


@require_POST
@login_required
def resume_domain(request: HttpRequest, domain_id: int) -> HttpResponse:
    if not request.user.is_superuser:
        raise Http404("Operators only.")
    guardrails.resume_sending(domain_id, operator=request.user.get_username())
    return redirect("analytics:dashboard")


@login_required
def timeline(request: HttpRequest, message_id: int | None = None) -> JsonResponse:
    """By outbound message id, or ``?message_id=<Message-ID>`` for the webmail's Sent view."""
    message = get_outbound_message_for_user(
        request.user, message_id, header_message_id=request.GET.get("message_id", "")
    )
    return JsonResponse(
        {
            "message_id": message.id,
            "subject": message.subject,
            "events": message_timeline(message.organization_id, message.id),
        }
    )
