"""Mailgun's domain tracking API: ``GET /v3/domains/{domain}/tracking`` and
``PUT /v3/domains/{domain}/tracking/{open|click|unsubscribe}`` (form field ``active``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.services.domain_tracking import (
    KINDS,
    TrackingSettings,
    set_domain_tracking,
    tracking_of,
)
from api.errors import ApiError
from api.views.mailgun import MailgunView, _tristate

UPDATED = "Domain tracking settings have been updated"


def _mailgun_settings(kind: str, current: TrackingSettings) -> dict[str, Any]:
    out: dict[str, Any] = {"active": getattr(current, kind)}
    if kind == "open":
        out["place_at_the_top"] = False  # the pixel goes before </body>
    if kind == "unsubscribe":
        out["html_footer"] = out["text_footer"] = ""  # headers only, no footer (docs/api.md)
    return out


class DomainTrackingView(MailgunView):
    required_scope = "domains"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, domain: str) -> Response:
        current = tracking_of(self.domain(domain))
        tracking: dict[str, Any] = {kind: _mailgun_settings(kind, current) for kind in KINDS}
        tracking["web_scheme"] = urlsplit(settings.MAILROOM_TRACKING_BASE_URL).scheme or "https"
        return Response({"tracking": tracking})


class DomainTrackingKindView(MailgunView):
    required_scope = "domains"

    @extend_schema(request={"multipart/form-data": dict}, responses={200: dict})
    def put(self, request: Request, domain: str, kind: str) -> Response:
        if kind not in KINDS:
            raise ApiError("Not found", status_code=404)
        found = self.domain(domain)
        data = request.data
        for footer in ("html_footer", "text_footer"):
            if kind == "unsubscribe" and str(data.get(footer, "") or "").strip():
                raise ApiError(f"'{footer}' is not supported: Mailroom adds headers only")
        value = str(data.get("active", "") or "").strip()
        if value.lower() == "htmlonly" and kind != "click":
            raise ApiError("'active' parameter is not valid")
        active = _tristate(value or None, "active")  # 'htmlonly': HTML links are all we rewrite
        changes = {} if active is None else {kind: active}  # no 'active': no change
        current = set_domain_tracking(found, changes) if changes else tracking_of(found)
        return Response({"message": UPDATED, kind: _mailgun_settings(kind, current)})
