"""Live counters: per-second and per-minute event counts in Redis, and the snapshot pushed to
dashboards every second.

Keys (in the cache's Redis): ``live:s:<scope>:<epoch second>`` and ``live:m:<scope>:<epoch
minute>`` are hashes of event type -> count, where scope is the organization id or ``all`` (the
operators' view). Counters are bumped after the producer's transaction commits, so a rolled-back
change never shows up live. Second keys live 2 minutes, minute keys 2 hours.

The same pipeline that bumps the counters publishes the tenants it touched on the wake channel
(one PUBLISH per committed batch, not per event), so the live publisher
(analytics/services/publisher.py) pushes an update within a fraction of a second instead of
waiting for the next per-second tick.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django_redis import get_redis_connection

from config.metrics import count_redis_error

logger = logging.getLogger(__name__)

LIVE_TYPES = ("sent", "delivered", "deferred", "bounced", "complained", "opened", "clicked")
SERIES_SECONDS = 60
OPERATORS_GROUP = "analytics.operators"
ACTIVE_ORGS_KEY = "live:orgs"
VIEWERS_KEY = "live:viewers"
PUBLISHER_KEY = "live:publisher"  # the lease of the running live publisher, if any


def org_group(organization_id: int) -> str:
    return f"analytics.org.{organization_id}"


def _redis() -> Any:
    return get_redis_connection("default")


def wake_channel() -> str:
    """The pub/sub channel writers wake the publisher on. Pub/sub ignores database numbers, so
    the name carries the database: deployments (and test runs) sharing one server stay apart."""
    db = _redis().connection_pool.connection_kwargs.get("db", 0)
    return f"live:wake:{db}"


def bump_counters(counts: Counter[tuple[int, str]], now: float | None = None) -> None:
    """Add committed events to the live counters; never raises (live counts are best effort)."""
    second = int(now if now is not None else time.time())
    minute = second // 60
    try:
        pipe = _redis().pipeline(transaction=False)
        for (organization_id, event_type), count in counts.items():
            for scope in (str(organization_id), "all"):
                skey, mkey = f"live:s:{scope}:{second}", f"live:m:{scope}:{minute}"
                pipe.hincrby(skey, event_type, count)
                pipe.expire(skey, 120)
                pipe.hincrby(mkey, event_type, count)
                pipe.expire(mkey, 7200)
            pipe.zadd(ACTIVE_ORGS_KEY, {str(organization_id): second})
        organizations = sorted({organization_id for organization_id, _ in counts})
        pipe.publish(wake_channel(), ",".join(map(str, organizations)))
        pipe.execute()
    except Exception:  # noqa: BLE001 - Redis down must not fail the producer after its commit
        count_redis_error("live_counters")
        logger.warning("live counters unavailable", exc_info=True)


def _as_int_map(raw: dict[bytes, bytes]) -> dict[str, int]:
    return {key.decode(): int(value) for key, value in raw.items()}


# A bump lands in the second (and minute) it happens in, so a bucket that ended this long ago
# (allowing for clock skew between hosts) no longer changes and a long-running reader may keep it.
SETTLE_SECONDS = 2
# Final buckets a long-running publisher keeps between snapshots: key prefix (kind and scope)
# -> key -> counts.
FinalBuckets = dict[str, dict[str, dict[str, int]]]


def _read_buckets(
    keys: list[str], final_count: int, memo: FinalBuckets | None
) -> list[dict[str, int]]:
    """The hashes at ``keys`` (one kind and scope, oldest first), of which the first
    ``final_count`` no longer change: with a ``memo`` those are read from Redis once and kept
    (only the final buckets of the latest read per prefix, so it does not grow with time)."""
    prefix = keys[0].rsplit(":", 1)[0]
    known = memo.get(prefix, {}) if memo is not None else {}
    missing = [key for key in keys if key not in known]
    pipe = _redis().pipeline(transaction=False)
    for key in missing:
        pipe.hgetall(key)
    found = dict(zip(missing, (_as_int_map(raw) for raw in pipe.execute()), strict=True))
    values = [found[key] if key in found else known[key] for key in keys]
    if memo is not None:
        memo[prefix] = dict(zip(keys[:final_count], values[:final_count], strict=True))
    return values


def read_series(
    scope: str,
    end_second: int,
    seconds: int = SERIES_SECONDS,
    *,
    now: float | None = None,
    memo: FinalBuckets | None = None,
) -> list[dict[str, int]]:
    """Per-second counts for the ``seconds`` seconds ending at ``end_second`` (inclusive)."""
    now = now if now is not None else time.time()
    start = end_second - seconds + 1
    final = sum(1 for one in range(start, end_second + 1) if one + 1 + SETTLE_SECONDS <= now)
    keys = [f"live:s:{scope}:{one}" for one in range(start, end_second + 1)]
    return _read_buckets(keys, final, memo)


def read_last_hour(
    scope: str, now_second: int, *, now: float | None = None, memo: FinalBuckets | None = None
) -> dict[str, int]:
    """Totals per type over the last 60 minutes (current minute included)."""
    now = now if now is not None else time.time()
    minute = now_second // 60
    minutes = range(minute - 59, minute + 1)
    final = sum(1 for one in minutes if (one + 1) * 60 + SETTLE_SECONDS <= now)
    totals: Counter[str] = Counter()
    for counts in _read_buckets([f"live:m:{scope}:{one}" for one in minutes], final, memo):
        totals.update(counts)
    return dict(totals)


def watch_organization(organization_id: int, now_second: int) -> None:
    """A tenant dashboard is open: keep its group updated for the next hour (or until closed)."""
    _redis().zadd(VIEWERS_KEY, {str(organization_id): now_second + 3600})


def active_organizations(now_second: int) -> list[int]:
    """Tenants with an event in the last 2 minutes or an open dashboard (their groups)."""
    redis = _redis()
    redis.zremrangebyscore(ACTIVE_ORGS_KEY, 0, now_second - 120)
    redis.zremrangebyscore(VIEWERS_KEY, 0, now_second)
    members = set(redis.zrange(ACTIVE_ORGS_KEY, 0, -1)) | set(redis.zrange(VIEWERS_KEY, 0, -1))
    return sorted(int(member) for member in members)


def build_snapshot(
    organization_id: int | None, now: float | None = None, memo: FinalBuckets | None = None
) -> dict[str, Any]:
    """The compact update a dashboard receives: last 60 s per type, hour totals, queue, rates.

    A long-running caller passes a ``memo`` (one per process): only the open buckets are then
    read from Redis each time (about 4 hashes instead of 120).
    """
    from analytics.services import dashboard

    now = now if now is not None else time.time()
    second = int(now)
    scope = "all" if organization_id is None else str(organization_id)
    series = read_series(scope, second, now=now, memo=memo)
    hour = read_last_hour(scope, second, now=now, memo=memo)
    attempted = hour.get("delivered", 0) + hour.get("bounced", 0)
    delivered = hour.get("delivered", 0)
    return {
        "type": "analytics.update",
        "scope": scope,
        "second": second,
        "rates": {name: series[-2].get(name, 0) for name in LIVE_TYPES},
        "series": {name: [one.get(name, 0) for one in series] for name in LIVE_TYPES},
        "hour": {name: hour.get(name, 0) for name in LIVE_TYPES},
        "bounce_rate": round(hour.get("bounced", 0) / attempted, 4) if attempted else 0.0,
        "complaint_rate": round(hour.get("complained", 0) / delivered, 5) if delivered else 0.0,
        **dashboard.cached_queue_stats(organization_id),
    }


def broadcast_live_update(
    now: float | None = None,
    organizations: Iterable[int] | None = None,
    *,
    send: Callable[[str, dict[str, Any]], Any] | None = None,
    memo: FinalBuckets | None = None,
) -> int:
    """Send one snapshot to the operators' group and one to each active tenant's group (or only
    to ``organizations``' groups, those with new events: the publisher's early pushes).

    ``send(group, message)`` defaults to the channel layer's ``group_send`` on a fresh event
    loop per call; the publisher passes one bound to its own loop (and a ``memo``).
    """
    layer = get_channel_layer()
    if layer is None:
        return 0
    now = now if now is not None else time.time()
    send = send or async_to_sync(layer.group_send)
    sent = 0
    try:
        send(OPERATORS_GROUP, build_snapshot(None, now, memo))
        sent += 1
        if organizations is None:
            organizations = active_organizations(int(now))
        for organization_id in organizations:
            send(org_group(organization_id), build_snapshot(organization_id, now, memo))
            sent += 1
    except Exception:  # noqa: BLE001 - a missed tick is harmless; the next one catches up
        count_redis_error("live_broadcast")
        logger.warning("live broadcast failed", exc_info=True)
    cache.set("live:last_broadcast", now, 60)
    return sent
