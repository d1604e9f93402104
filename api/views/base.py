"""The base of every API view: key auth, scope check, token buckets, size limit, headers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponseBase
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from api.authentication import ApiKeyAuthentication
from api.errors import ApiError
from api.models import ApiKey
from api.permissions import HasScope
from api.services.ratelimit import outbound_backlog_exceeded
from api.throttling import TokenBucketThrottle


class ApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [TokenBucketThrottle]
    renderer_classes = [JSONRenderer]
    required_scope: str | dict[str, str] | None = None
    is_send_endpoint = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAILROOM_API_MAX_BODY_BYTES:
            raise ApiError(
                f"Request body larger than {settings.MAILROOM_API_MAX_BODY_BYTES} bytes.",
                status_code=413,
            )
        super().initial(request, *args, **kwargs)
        if self.is_send_endpoint and request.method == "POST" and outbound_backlog_exceeded():
            raise ApiError(
                "The outbound queue is full; retry later.",
                status_code=503,
                code="backlog_full",
                retry_after=settings.MAILROOM_API_BACKLOG_RETRY_AFTER,
            )

    @property
    def api_key(self) -> ApiKey:
        return self.request.auth  # type: ignore[return-value]

    @property
    def organization_id(self) -> int:
        return self.api_key.organization_id

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)
        decision = getattr(request._request, "mailroom_rate", None)
        if decision is not None:
            response["X-RateLimit-Limit"] = str(decision.limit)
            response["X-RateLimit-Remaining"] = str(decision.remaining)
            if not decision.is_allowed:
                response["X-RateLimit-Reset"] = str(decision.retry_after)
                response["Retry-After"] = str(decision.retry_after)
        return response


def int_param(value: str | None, name: str, default: int, *, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)  # type: ignore[arg-type]
    except ValueError:
        raise ApiError("Enter a whole number.", fields={name: ["Enter a whole number."]}) from None
    if not low <= number <= high:
        message = f"Must be between {low} and {high}."
        raise ApiError(message, fields={name: [message]})
    return number
