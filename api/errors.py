"""JSON errors everywhere: native ``{"error": {...}}``, Mailgun ``{"message": "..."}`` on /v3/."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)

CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(exceptions.APIException):
    """Raised by views for a refused request; ``fields`` maps field names to messages."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 400,
        code: str = "",
        fields: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = code or CODES.get(status_code, "error")
        self.fields = fields or {}
        self.retry_after = retry_after


def is_mailgun_path(path: str) -> bool:
    return path.startswith("/v3/")


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def error_body(path: str, status_code: int, message: str, code: str, fields: dict) -> dict:
    if is_mailgun_path(path):
        if fields:
            name, messages = next(iter(fields.items()))
            message = f"{name}: {messages[0]}" if name != "non_field_errors" else messages[0]
        return {"message": message}
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    path = request.path if request is not None else ""
    fields: dict[str, list[str]] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    status_code = exc.status_code
    code = getattr(exc, "error_code", "") or (
        exc.default_code
        if isinstance(exc.default_code, str) and exc.default_code != "error"
        else CODES.get(status_code, "error")
    )
    if isinstance(exc, ApiError):
        message = str(exc.detail)
        fields = exc.fields
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "Invalid input."
    else:
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "Error."
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        message = "Too many requests."
    if status_code == 401 and is_mailgun_path(path):
        message = "Forbidden"
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    return Response(
        error_body(path, status_code, message, code, fields), status_code, headers=headers
    )


def is_api_path(path: str) -> bool:
    return path.startswith(("/api/", "/v3/"))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """JSON for unknown API URLs; Django's page for everything else."""
    if is_api_path(request.path):
        body = error_body(request.path, 404, "Not found.", "not_found", {})
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path):
        body = error_body(request.path, 500, "Internal error.", "server_error", {})
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
