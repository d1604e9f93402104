"""Per key and per tenant token buckets (see :mod:`api.services.ratelimit`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from api.models import ApiKey
from api.services.ratelimit import Bucket, Decision, take_token


class TokenBucketThrottle(BaseThrottle):
    """Refuses with 429; the decision is kept on the request for the X-RateLimit-* headers."""

    def allow_request(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        key_rate = api_key.rate_per_second or settings.MAILROOM_API_KEY_RATE
        org_rate = settings.MAILROOM_API_TENANT_RATE
        burst = settings.MAILROOM_API_BURST_SECONDS
        decision = take_token(
            [
                Bucket(f"key:{api_key.pk}", key_rate, max(1, int(key_rate * burst))),
                Bucket(f"org:{api_key.organization_id}", org_rate, max(1, int(org_rate * burst))),
            ]
        )
        request._request.mailroom_rate = decision  # type: ignore[attr-defined]
        self.decision = decision
        return decision.is_allowed

    def wait(self) -> float | None:
        decision: Decision | None = getattr(self, "decision", None)
        return float(decision.retry_after) if decision else None
