"""Token buckets in Redis (one atomic Lua script per request) and the outbound backlog cap."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django_redis import get_redis_connection

from config.metrics import count_redis_error
from mailcore.models import Delivery

# KEYS[i]: bucket hash; ARGV: now, then (rate, burst) per key. Takes one token from every
# bucket or from none; returns {allowed, remaining of the tightest, seconds until a token}.
_TAKE = """
local now = tonumber(ARGV[1])
local allowed = 1
local remaining = math.huge
local wait = 0
local state = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[i * 2])
  local burst = tonumber(ARGV[i * 2 + 1])
  local data = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(data[1]) or burst
  local ts = tonumber(data[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  state[i] = tokens
  if tokens < 1 then
    allowed = 0
    wait = math.max(wait, (1 - tokens) / rate)
  end
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[i * 2])
  local burst = tonumber(ARGV[i * 2 + 1])
  local tokens = state[i] - allowed
  remaining = math.min(remaining, tokens)
  redis.call('HSET', key, 't', tokens, 'ts', now)
  redis.call('EXPIRE', key, math.ceil(burst / rate) + 1)
end
return {allowed, tostring(remaining), tostring(wait)}
"""


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    rate: float  # tokens per second
    burst: int


@dataclass(frozen=True, slots=True)
class Decision:
    is_allowed: bool
    limit: int
    remaining: int
    retry_after: int  # whole seconds, at least 1 when refused


_script = None


def take_token(buckets: list[Bucket]) -> Decision:
    """Take one token from each bucket atomically. Redis down means allowed (mail first)."""
    global _script
    limit = min(bucket.burst for bucket in buckets)
    try:
        connection = get_redis_connection("default")
        if _script is None:
            _script = connection.register_script(_TAKE)
        arguments: list[float] = [time.time()]
        for bucket in buckets:
            arguments += [bucket.rate, bucket.burst]
        allowed, remaining, wait = _script(
            keys=[f"mr:rl:{bucket.name}" for bucket in buckets], args=arguments, client=connection
        )
    except Exception:  # noqa: BLE001 - a rate limiter must never take the API down
        count_redis_error("rate_limiter")
        return Decision(True, limit, limit, 0)
    return Decision(
        bool(int(allowed)),
        limit,
        max(0, math.floor(float(remaining))),
        0 if int(allowed) else max(1, math.ceil(float(wait))),
    )


def outbound_backlog_exceeded() -> bool:
    """Whether queued deliveries passed ``MAILROOM_API_BACKLOG_CAP`` (0 = no cap).

    Counted from the partial ``delivery_due`` index, at most cap+1 rows, cached one second.
    """
    cap = settings.MAILROOM_API_BACKLOG_CAP
    if cap <= 0:
        return False
    now = time.monotonic()
    if _backlog_cache[0] > now:
        return _backlog_cache[1]
    queued = Delivery.objects.filter(status__in=["queued", "deferred"]).values("id")[: cap + 1]
    exceeded = queued.count() > cap
    _backlog_cache[:] = [now + 1.0, exceeded]
    return exceeded


_backlog_cache: list = [0.0, False]
