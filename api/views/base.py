"""The base of every API view: key auth, scope check, token buckets, size limit, headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponseBase
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.authentication import ApiKeyAuthentication
from api.errors import ApiError
from api.models import ApiKey
from api.permissions import HasScope
from api.services import idempotency
from api.services.ratelimit import outbound_backlog_exceeded
from api.throttling import TokenBucketThrottle


class ApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [TokenBucketThrottle]
    renderer_classes = [JSONRenderer]
    required_scope: str | dict[str, str] | None = None
    is_send_endpoint = False
    # Set by :meth:`run_idempotent` for the send it runs: the outbox's key for the message.
    outbound_idempotency_key = ""

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

    def run_idempotent(self, request: Request, send: Callable[[], Response]) -> Response:
        """Run ``send`` under the request's ``Idempotency-Key`` (see
        :mod:`api.services.idempotency`): a repeat gets the stored response, a reuse with
        another request 422, a repeat while the first still runs 409. Without the header,
        ``send`` simply runs."""
        header = request.headers.get("Idempotency-Key")
        if header is None:
            return send()
        try:
            key = idempotency.parse_key(header)
            outcome = idempotency.claim_idempotency_key(
                organization_id=self.organization_id,
                key=key,
                fingerprint=idempotency.request_fingerprint(
                    request.method or "POST", request.path, request.data
                ),
                method=request.method or "POST",
                path=request.path,
            )
        except idempotency.IdempotencyError as exc:
            raise ApiError(str(exc), status_code=exc.status, code=exc.code) from exc
        if isinstance(outcome, idempotency.Replay):
            return Response(
                outcome.body, status=outcome.status, headers={"Idempotent-Replayed": "true"}
            )
        self.outbound_idempotency_key = outcome.outbound_key
        try:
            response = send()
        except BaseException:
            idempotency.abandon_idempotency_key(outcome, self.organization_id)
            raise
        if 200 <= response.status_code < 300:
            idempotency.complete_idempotency_key(outcome, response.status_code, response.data)
        else:
            idempotency.abandon_idempotency_key(outcome, self.organization_id)
        return response

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
