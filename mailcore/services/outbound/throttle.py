"""Rate limits in Redis, shared by every worker: destination connections and messages per
minute, sending-domain hourly/daily quotas.

Redis is a helper here, not the truth: when it is unreachable every check says yes (degrades
open) and the database still prevents double sends. Counters are fixed windows (per minute,
hour, day), reserved in one Lua call so concurrent workers never overshoot a window; connection
slots are members of a sorted set scored by expiry, so a killed worker's slots free themselves.

Limits per destination domain come from ``MAILROOM_DESTINATION_LIMITS``
(``"gmail.com=20/3000,yahoo.com=10/1200"``: connections/messages per minute, 0 = unlimited) on
top of built-in defaults for large providers, then ``MAILROOM_DESTINATION_MAX_CONNECTIONS`` /
``MAILROOM_DESTINATION_MAX_PER_MINUTE`` for everyone else. Through ``MAILROOM_RELAY_HOST`` the
relay is the one destination: ``MAILROOM_RELAY_MAX_CONNECTIONS``, no per-minute limit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings

from config.metrics import count_redis_error

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

PREFIX = "mr:out:"
SLOT_SECONDS = 600

# connections, messages per minute: what large mailbox providers tolerate from a new sender.
PROVIDER_LIMITS: dict[str, tuple[int, int]] = {
    "gmail.com": (20, 3000),
    "googlemail.com": (20, 3000),
    "outlook.com": (10, 1200),
    "hotmail.com": (10, 1200),
    "live.com": (10, 1200),
    "yahoo.com": (10, 1200),
    "aol.com": (10, 1200),
    "icloud.com": (10, 1200),
    "me.com": (10, 1200),
    "gmx.de": (10, 1200),
    "web.de": (10, 1200),
}

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""

# KEYS: counters; ARGV: wanted, then (limit, ttl) per key. Reserves min(wanted, room) in all.
_TAKE = """
local allowed = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i * 2])
  local used = tonumber(redis.call('GET', key) or '0')
  allowed = math.min(allowed, math.max(0, limit - used))
end
if allowed > 0 then
  for i, key in ipairs(KEYS) do
    redis.call('INCRBY', key, allowed)
    redis.call('EXPIRE', key, ARGV[i * 2 + 1])
  end
end
return allowed
"""


@dataclass(frozen=True, slots=True)
class Limits:
    connections: int  # 0 = unlimited
    per_minute: int  # 0 = unlimited


def _client() -> Redis:
    from django_redis import get_redis_connection

    return get_redis_connection("default")


@cache
def _configured_limits(text: str) -> dict[str, Limits]:
    limits = {name: Limits(*pair) for name, pair in PROVIDER_LIMITS.items()}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, values = item.partition("=")
        connections, _, per_minute = values.partition("/")
        limits[name.strip().lower()] = Limits(int(connections or 0), int(per_minute or 0))
    return limits


def destination_limits(route_key: str, domain: str) -> Limits:
    if route_key.startswith("relay:"):
        return Limits(settings.MAILROOM_RELAY_MAX_CONNECTIONS, 0)
    found = _configured_limits(settings.MAILROOM_DESTINATION_LIMITS).get(domain)
    return found or Limits(
        settings.MAILROOM_DESTINATION_MAX_CONNECTIONS, settings.MAILROOM_DESTINATION_MAX_PER_MINUTE
    )


def acquire_connection(route_key: str, member: str, limit: int) -> bool:
    """Take one of ``limit`` connection slots for ``route_key`` (refresh it if held)."""
    if limit <= 0:
        return True
    now = time.time()
    try:
        script = _client().register_script(_ACQUIRE)
        key = f"{PREFIX}conn:{route_key}"
        return bool(script(keys=[key], args=[now, now + SLOT_SECONDS, limit, member, 3600]))
    except Exception:
        count_redis_error("outbound_throttle")
        log.warning("connection throttle unavailable; allowing", exc_info=True)
        return True


def release_connection(route_key: str, member: str) -> None:
    try:
        _client().zrem(f"{PREFIX}conn:{route_key}", member)
    except Exception:
        count_redis_error("outbound_throttle")
        log.warning("connection throttle unavailable", exc_info=True)


def _take(keys_limits: list[tuple[str, int, int]], wanted: int) -> int:
    keys_limits = [item for item in keys_limits if item[1] > 0]
    if not keys_limits or wanted <= 0:
        return wanted
    args: list[int] = [wanted]
    for _, limit, ttl in keys_limits:
        args += [limit, ttl]
    try:
        script = _client().register_script(_TAKE)
        return int(script(keys=[key for key, _, _ in keys_limits], args=args))
    except Exception:
        count_redis_error("outbound_throttle")
        log.warning("rate counters unavailable; allowing", exc_info=True)
        return wanted


def take_destination_rate(route_key: str, limit: int, wanted: int, now: datetime) -> int:
    """Reserve up to ``wanted`` sends in this minute's window; returns how many are allowed."""
    minute = int(now.timestamp() // 60)
    return _take([(f"{PREFIX}rate:{route_key}:{minute}", limit, 120)], wanted)


def take_sending_quota(domain: str, wanted: int, now: datetime) -> int:
    hour = int(now.timestamp() // 3600)
    day = int(now.timestamp() // 86400)
    return _take(
        [
            (f"{PREFIX}quota:h:{domain}:{hour}", settings.MAILROOM_SENDING_HOURLY_QUOTA, 7200),
            (f"{PREFIX}quota:d:{domain}:{day}", settings.MAILROOM_SENDING_DAILY_QUOTA, 172800),
        ],
        wanted,
    )


def next_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def next_quota_window(now: datetime) -> datetime:
    """When a sending domain over quota may try again (the next hour, or day if that is full)."""
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
