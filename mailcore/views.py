from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from config.metrics import is_scrape_allowed, render_metrics
from mailcore.health import readiness

_FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    code, body = readiness()
    return JsonResponse(body, status=code)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of every process on this host (docs/operations.md "Metrics")."""
    allowed = is_scrape_allowed(
        request.META.get("REMOTE_ADDR", ""),
        request.headers.get("Authorization", ""),
        is_forwarded=any(name in request.headers for name in _FORWARDING_HEADERS),
    )
    if not allowed:
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
