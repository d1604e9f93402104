"""Request ids and HTTP metrics for every request (both sync and async, no thread hop).

``RequestIdMiddleware`` goes first: it takes a sane incoming ``X-Request-ID`` (a load balancer's)
or makes one, puts it in the logging context (``config.logs``) and returns it in the response.
``MetricsMiddleware`` follows: it counts and times the request by URL *name* (never the raw
path, which would make a time series per message id) and writes one access-log line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from config.logs import request_id_var
from config.metrics import HTTP_LATENCY, HTTP_REQUESTS, count_if_database_error

access_log = logging.getLogger("mailroom.http")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{8,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

GetResponse = Callable[[HttpRequest], Any]


class _HybridMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        before = self.before(request)
        return self.after(request, self.get_response(request), before)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        before = self.before(request)
        response = await self.get_response(request)
        return self.after(request, response, before)

    def before(self, request: HttpRequest) -> Any:
        raise NotImplementedError

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> Any:
        raise NotImplementedError


def request_id_for(incoming: str | None) -> str:
    """The client's id when it looks like one (8-128 safe characters), else a new one."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware(_HybridMiddleware):
    def before(self, request: HttpRequest) -> Any:
        request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        return request_id, request_id_var.set(request_id)

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> Any:
        request_id, token = state
        response[REQUEST_ID_HEADER] = request_id
        request_id_var.reset(token)
        return response


def route_of(request: HttpRequest) -> str:
    """The URL name of the view that answered (bounded), ``static`` or ``unmatched``."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or "unnamed"
    if request.path.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"


class MetricsMiddleware(_HybridMiddleware):
    def before(self, request: HttpRequest) -> Any:
        return time.perf_counter()

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> Any:
        elapsed = time.perf_counter() - state
        route = route_of(request)
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route, method).observe(elapsed)
        access_log.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            elapsed * 1000,
            extra={
                "http_method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        count_if_database_error("http", exception)
