"""Every Prometheus metric Mailroom exposes, defined in one place (docs/operations.md "Metrics").

This lives in ``config/`` rather than in an app because mailcore, analytics and api all
instrument their code paths and ``config`` is the one package each may import without an
import cycle; it depends on nothing but prometheus_client (the queue collector imports its
query lazily).

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``make run`` sets and empties it;
gunicorn workers, Celery's forked children and the SMTP receivers inherit it), every process
writes its samples to memory-mapped files there and ``/metrics`` in any web worker sums the
files of all processes on the host. The variable must be set before the process starts:
prometheus_client picks its storage when it is first imported. Without it (a shell, a test of
one process) the samples live in this process only.

Labels are bounded on purpose: URL names (never raw paths), SMTP service, reply-code classes,
fixed outcomes and component names.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

# --- HTTP (config/middleware.py) ---------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "mailroom_http_requests_total",
    "HTTP requests answered, by URL name, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "mailroom_http_request_duration_seconds",
    "Time from the request entering the middleware stack to the response leaving it.",
    ["route", "method"],
)

# --- SMTP receiver and submission (mailcore/smtp/) ---------------------------------------------
SMTP_SESSIONS = Counter(
    "mailroom_smtp_sessions_total",
    "SMTP sessions admitted (service is mx or submission).",
    ["service"],
)
SMTP_CONNECTIONS_REFUSED = Counter(
    "mailroom_smtp_connections_refused_total",
    "Connections answered 421 at connect: connection caps or shutting down.",
    ["service"],
)
SMTP_MESSAGES_ACCEPTED = Counter(
    "mailroom_smtp_messages_accepted_total",
    "Transactions answered 2xx after DATA (the message is committed).",
    ["service"],
)
SMTP_MESSAGES_REFUSED = Counter(
    "mailroom_smtp_messages_refused_total",
    "Transactions refused after DATA, by reply code class (4xx temporary, 5xx permanent).",
    ["service", "code_class"],
)

# --- Outbound (mailcore/services/outbound/) ----------------------------------------------------
OUTBOUND_SUBMITTED = Counter(
    "mailroom_outbound_messages_submitted_total",
    "Messages accepted into the outbound queue, by source (api, smtp, webmail).",
    ["source"],
)
DELIVERIES = Counter(
    "mailroom_outbound_deliveries_total",
    "Delivery attempts recorded, by outcome (delivered, deferred, bounced, failed, suppressed).",
    ["outcome"],
)
DELIVERY_LATENCY = Histogram(
    "mailroom_outbound_delivery_latency_seconds",
    "From acceptance of a message to the delivery of one recipient.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
BOUNCES = Counter(
    "mailroom_bounces_total",
    "Recipients that bounced: source smtp (refused during delivery) or dsn (a bounce report).",
    ["source"],
)
COMPLAINTS = Counter(
    "mailroom_complaints_total",
    "Complaints (ARF feedback reports) matched to a delivery.",
)

# --- Webhooks (api/services/webhooks.py) -------------------------------------------------------
WEBHOOK_ATTEMPTS = Counter(
    "mailroom_webhook_attempts_total",
    "Webhook POSTs, by outcome (delivered or failed: error status, timeout, refused).",
    ["outcome"],
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "mailroom_webhook_endpoints_disabled_total",
    "Endpoints disabled after failing for MAILROOM_API_WEBHOOK_DISABLE_AFTER.",
)

# --- Event writer (analytics/services/batch.py) ------------------------------------------------
EVENT_FLUSHES = Counter(
    "mailroom_event_buffer_flushes_total",
    "Batched event INSERTs of the per-process event buffer, by outcome (ok or error).",
    ["outcome"],
)
EVENT_FLUSHED_EVENTS = Counter(
    "mailroom_event_buffer_events_total",
    "Events leaving the buffer: written, or dropped because the INSERT failed.",
    ["outcome"],
)
EVENT_LAG = Histogram(
    "mailroom_event_buffer_lag_seconds",
    "Age of the oldest event of a batch when its INSERT finished.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

# --- Dependencies ------------------------------------------------------------------------------
DATABASE_ERRORS = Counter(
    "mailroom_database_errors_total",
    "Database errors caught and survived, by component.",
    ["component"],
)
REDIS_ERRORS = Counter(
    "mailroom_redis_errors_total",
    "Redis errors caught and survived (Redis is best effort), by component.",
    ["component"],
)


# Known label values start at 0, so every series exists from the first scrape: rate() and the
# ratios in deploy/prometheus/alerts.yml work before the first event of a kind.
SMTP_SERVICES = ("mx", "submission")
DELIVERY_OUTCOMES = ("delivered", "deferred", "bounced", "failed", "suppressed")
DATABASE_COMPONENTS = (
    "readyz", "http", "smtp_lookup", "smtp_ingest", "inbound_store", "submission",
    "outbound_record", "event_buffer", "metrics",
)  # fmt: skip
REDIS_COMPONENTS = (
    "readyz", "cache", "rate_limiter", "outbound_throttle", "live_counters", "live_broadcast",
    "new_mail_push",
)  # fmt: skip
for _service in SMTP_SERVICES:
    SMTP_SESSIONS.labels(_service)
    SMTP_CONNECTIONS_REFUSED.labels(_service)
    SMTP_MESSAGES_ACCEPTED.labels(_service)
    for _class in ("4xx", "5xx"):
        SMTP_MESSAGES_REFUSED.labels(_service, _class)
for _source in ("api", "smtp", "webmail"):
    OUTBOUND_SUBMITTED.labels(_source)
for _outcome in DELIVERY_OUTCOMES:
    DELIVERIES.labels(_outcome)
for _source in ("smtp", "dsn"):
    BOUNCES.labels(_source)
for _outcome in ("delivered", "failed"):
    WEBHOOK_ATTEMPTS.labels(_outcome)
for _outcome in ("ok", "error"):
    EVENT_FLUSHES.labels(_outcome)
for _outcome in ("written", "dropped"):
    EVENT_FLUSHED_EVENTS.labels(_outcome)
for _component in DATABASE_COMPONENTS:
    DATABASE_ERRORS.labels(_component)
for _component in REDIS_COMPONENTS:
    REDIS_ERRORS.labels(_component)


def code_class(reply: str) -> str:
    """``"4xx"`` for ``"451 4.3.0 ..."``; ``"other"`` for anything that is not a reply."""
    return f"{reply[0]}xx" if reply[:1] in ("2", "3", "4", "5") else "other"


def count_database_error(component: str) -> None:
    DATABASE_ERRORS.labels(component).inc()


def count_redis_error(component: str) -> None:
    REDIS_ERRORS.labels(component).inc()


def count_if_database_error(component: str, exc: BaseException) -> None:
    """Count ``exc`` when it came from the database (handlers that catch everything use it)."""
    from django.db import DatabaseError

    if isinstance(exc, DatabaseError):
        DATABASE_ERRORS.labels(component).inc()


class OutboundQueueCollector(Collector):
    """Queue depth and oldest-due age per outbound queue, read from the database at scrape time
    (one indexed query; see ``mailcore.services.outbound.queue_stats``)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from mailcore.services.outbound.queue_stats import outbound_queue_stats

        depth = GaugeMetricFamily(
            "mailroom_outbound_queue_depth",
            "Deliveries waiting per queue: queued (first try), deferred (retrying), sending.",
            labels=["queue"],
        )
        age = GaugeMetricFamily(
            "mailroom_outbound_queue_oldest_due_seconds",
            "How long the longest-waiting due delivery has been due (sending: lease overrun).",
            labels=["queue"],
        )
        try:
            stats = outbound_queue_stats()
        except Exception:  # noqa: BLE001 - a scrape must still show the counters
            log.warning("outbound queue statistics unavailable", exc_info=True)
            count_database_error("metrics")
            return
        for stat in stats:
            depth.add_metric([stat.queue], stat.depth)
            age.add_metric([stat.queue], stat.oldest_due_seconds)
        yield depth
        yield age


def render_metrics() -> bytes:
    """The text exposition of every process's metrics plus the queue gauges."""
    extra = CollectorRegistry()
    extra.register(OutboundQueueCollector())
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
        return generate_latest(registry) + generate_latest(extra)
    return generate_latest(REGISTRY) + generate_latest(extra)


def is_scrape_allowed(remote_addr: str, authorization: str, is_forwarded: bool) -> bool:
    """Whether a request may read /metrics: the bearer token, or an allowed source address.

    A request that came through a proxy (forwarding headers) never gets the address allowance:
    a reverse proxy on the same host would otherwise make every client look like loopback.
    """
    from django.conf import settings

    token = settings.MAILROOM_METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return True
    if is_forwarded:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(
        address in ipaddress.ip_network(cidr, strict=False)
        for cidr in settings.MAILROOM_METRICS_ALLOWED_CIDRS
    )
