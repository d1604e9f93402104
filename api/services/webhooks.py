"""Webhooks: signed POSTs of events, driven from the event table by a per-endpoint cursor.

Each endpoint is an outbox reader: ``last_event_id`` is the last event handed over. A worker
claims a due endpoint with a conditional UPDATE (a lease on ``next_attempt_at``), POSTs the
following events in order, and moves the cursor after each success, so a crash re-sends at most
the event in flight (at-least-once; receivers dedupe on the event id). A failure keeps the
cursor and backs off exponentially; a 406 gives that one event up (as Mailgun does); failing
for longer than ``MAILROOM_API_WEBHOOK_DISABLE_AFTER`` disables the endpoint with a reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from analytics.models import Event
from analytics.services.events import record_event
from api.models import WebhookDelivery, WebhookEndpoint
from api.services.events import MAILGUN_EVENTS, NATIVE_TYPES, mailgun_events, native_event
from config.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_ENDPOINTS_DISABLED

BATCH_SIZE = 100
LEASE_SECONDS = 120


class WebhookError(ValueError):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class PostResult:
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def is_success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def create_endpoint(
    organization_id: int, url: str, *, format: str = "native", event_types: list[str] | None = None
) -> WebhookEndpoint:
    """New endpoints start at the current end of the event table (no history replay)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WebhookError("Enter an http(s) URL.", "url")
    if format not in WebhookEndpoint.Format.values:
        raise WebhookError(f"Unknown format {format!r}.", "format")
    unknown = sorted(
        set(event_types or []) - set(NATIVE_TYPES) - {m[0] for m in MAILGUN_EVENTS.values()}
    )
    if unknown:
        raise WebhookError(f"Unknown event type {unknown[0]!r}.", "event_types")
    with transaction.atomic():
        last = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        return WebhookEndpoint.objects.create(
            organization_id=organization_id,
            url=url,
            format=format,
            event_types=sorted(set(event_types or [])),
            signing_key=secrets.token_hex(32),
            last_event_id=last,
        )


def native_signature(signing_key: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(signing_key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return digest.hexdigest()


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    message = f"{timestamp}{token}".encode()
    return hmac.new(signing_key.encode(), message, hashlib.sha256).hexdigest()


def build_request(
    endpoint: WebhookEndpoint, data: dict[str, Any], event_id: int, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers POSTed for one event (``data`` in the endpoint's format)."""
    timestamp = str(int(now if now is not None else time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "Mailroom-Webhooks/1"}
    if endpoint.format == WebhookEndpoint.Format.MAILGUN:
        # Stable per event and endpoint, so a retried event carries the same token (anymail
        # uses it as the event id for deduplication).
        token = hmac.new(
            endpoint.signing_key.encode(), f"event:{event_id}".encode(), hashlib.sha256
        ).hexdigest()[:50]
        signature = {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(endpoint.signing_key, timestamp, token),
        }
        body = json.dumps({"signature": signature, "event-data": data}).encode()
    else:
        body = json.dumps(data).encode()
        headers["X-Mailroom-Event-Id"] = str(event_id)
        headers["X-Mailroom-Timestamp"] = timestamp
        sig = native_signature(endpoint.signing_key, timestamp, body)
        headers["X-Mailroom-Signature"] = f"t={timestamp},v1={sig}"
    return body, headers


def post(url: str, body: bytes, headers: dict[str, str]) -> PostResult:
    parsed = urllib.parse.urlsplit(url)
    if parsed.username is not None:
        credentials = (
            f"{urllib.parse.unquote(parsed.username)}:{urllib.parse.unquote(parsed.password or '')}"
        )
        headers = {
            **headers,
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
        }
        netloc = parsed.hostname or ""
        if parsed.port:
            netloc += f":{parsed.port}"
        url = urllib.parse.urlunsplit(parsed._replace(netloc=netloc))
    started = time.monotonic()
    # http(s) only: the scheme is checked when the endpoint is created.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    timeout = settings.MAILROOM_API_WEBHOOK_TIMEOUT
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(4096)
            code, error = response.status, ""
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        code, error = None, str(getattr(exc, "reason", exc))[:500]
    return PostResult(code, error, int((time.monotonic() - started) * 1000))


def _payloads(endpoint: WebhookEndpoint, events: list[Event]) -> list[dict[str, Any]]:
    if endpoint.format == WebhookEndpoint.Format.MAILGUN:
        return mailgun_events(events)
    return [native_event(event) for event in events]


def _wanted(endpoint: WebhookEndpoint, event: Event) -> bool:
    if event.type.startswith("webhook_"):
        return False
    if not endpoint.event_types:
        return True
    mailgun_name = MAILGUN_EVENTS.get(event.type, (event.type,))[0]
    return event.type in endpoint.event_types or mailgun_name in endpoint.event_types


def backoff(failures: int) -> timedelta:
    return timedelta(
        seconds=min(settings.MAILROOM_API_WEBHOOK_MAX_BACKOFF, 15 * 2 ** min(failures, 12))
    )


def claim_endpoint(endpoint_id: int, now: datetime) -> bool:
    claimed = WebhookEndpoint.objects.filter(
        id=endpoint_id, is_active=True, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS))
    return claimed == 1


def due_endpoint_ids(now: datetime | None = None) -> list[int]:
    return list(
        WebhookEndpoint.objects.filter(is_active=True, next_attempt_at__lte=now or timezone.now())
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:500]
    )


def deliver_endpoint(endpoint_id: int, *, now: datetime | None = None) -> int:
    """Post the events after the endpoint's cursor; returns how many were handed over.

    Safe to call concurrently and repeatedly: only the caller that claims the lease works.
    """
    now = now or timezone.now()
    if not claim_endpoint(endpoint_id, now):
        return 0
    endpoint = WebhookEndpoint.objects.get(id=endpoint_id)
    # Ids are handed out before commit, so a row with a lower id can become visible after a
    # higher one. Reading only events that settled a few seconds keeps the cursor from
    # skipping such a late commit.
    settled = now - timedelta(seconds=settings.MAILROOM_API_WEBHOOK_SETTLE_SECONDS)
    events = list(
        Event.objects.filter(
            organization_id=endpoint.organization_id,
            id__gt=endpoint.last_event_id,
            occurred_at__lte=settled,
        ).order_by("id")[:BATCH_SIZE]
    )
    wanted = [event for event in events if _wanted(endpoint, event)]
    payloads = dict(zip([e.id for e in wanted], _payloads(endpoint, wanted), strict=True))
    handed = 0
    cursor = endpoint.last_event_id
    for event in events:
        if event.id not in payloads:
            cursor = event.id
            continue
        body, headers = build_request(endpoint, payloads[event.id], event.id)
        result = post(endpoint.url, body, headers)
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=event.id,
            event_type=event.type,
            attempt=endpoint.consecutive_failures + 1,
            status_code=result.status_code,
            is_success=result.is_success,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        _record_attempt_event(endpoint, event, result)
        WEBHOOK_ATTEMPTS.labels("delivered" if result.is_success else "failed").inc()
        if result.is_success or result.status_code == 406:
            cursor = event.id
            handed += 1
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
            continue
        _record_failure(endpoint, cursor, now, result)
        return handed
    more = len(events) == BATCH_SIZE
    WebhookEndpoint.objects.filter(id=endpoint.id).update(
        last_event_id=cursor,
        consecutive_failures=0,
        failing_since=None,
        next_attempt_at=now if more else timezone.now(),
    )
    return handed


def _record_attempt_event(endpoint: WebhookEndpoint, event: Event, result: PostResult) -> None:
    """A webhook_delivered / webhook_failed event (never itself posted: see ``_wanted``)."""
    record_event(
        endpoint.organization_id,
        "webhook_delivered" if result.is_success else "webhook_failed",
        message_id=event.message_id,
        recipient=event.recipient,
        payload={
            "endpoint_id": endpoint.id,
            "event_id": event.id,
            "event_type": event.type,
            "status_code": result.status_code,
            "error": result.error,
        },
    )


def _record_failure(
    endpoint: WebhookEndpoint, cursor: int, now: datetime, result: PostResult
) -> None:
    failing_since = endpoint.failing_since or now
    failures = endpoint.consecutive_failures + 1
    update: dict[str, Any] = {
        "last_event_id": cursor,
        "consecutive_failures": F("consecutive_failures") + 1,
        "failing_since": failing_since,
        "next_attempt_at": now + backoff(failures),
    }
    limit = timedelta(seconds=settings.MAILROOM_API_WEBHOOK_DISABLE_AFTER)
    if now - failing_since >= limit:
        update["is_active"] = False
        WEBHOOK_ENDPOINTS_DISABLED.inc()
        update["disabled_reason"] = (
            f"Disabled at {now.isoformat()} after {failures} consecutive failed attempts since "
            f"{failing_since.isoformat()}; last error: {result.error or result.status_code}"
        )
    WebhookEndpoint.objects.filter(id=endpoint.id).update(**update)


def send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """POST a synthetic ``delivered`` event (id 0) and log it; the cursor does not move."""
    event = Event(
        id=0,
        organization_id=endpoint.organization_id,
        type="delivered",
        occurred_at=timezone.now(),
        recipient="test@example.com",
        tags=["test"],
        payload={"message_id": "test@mailroom", "test": True},
    )
    body, headers = build_request(endpoint, _payloads(endpoint, [event])[0], 0)
    result = post(endpoint.url, body, headers)
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=0,
        event_type="delivered",
        status_code=result.status_code,
        is_success=result.is_success,
        error=result.error,
        duration_ms=result.duration_ms,
        is_test=True,
    )
