"""Sign-in throttling: failed attempts counted per IP and per username in Redis.

Counters live in the Django cache (Redis) with a fixed window that starts at the first failure.
When Redis is down the counters read as zero: sign-in keeps working, unthrottled.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = getattr(settings, "MAILROOM_LOGIN_WINDOW_SECONDS", 15 * 60)
MAX_FAILURES_PER_USERNAME = getattr(settings, "MAILROOM_LOGIN_MAX_FAILURES", 5)
MAX_FAILURES_PER_IP = getattr(settings, "MAILROOM_LOGIN_MAX_FAILURES_PER_IP", 20)


def _keys(ip: str, username: str) -> tuple[str, str]:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login:ip:{ip}", f"login:user:{digest}"


def is_login_blocked(ip: str, username: str) -> bool:
    ip_key, user_key = _keys(ip, username)
    counts = cache.get_many([ip_key, user_key])
    return (
        counts.get(ip_key, 0) >= MAX_FAILURES_PER_IP
        or counts.get(user_key, 0) >= MAX_FAILURES_PER_USERNAME
    )


def record_login_failure(ip: str, username: str) -> None:
    for key in _keys(ip, username):
        cache.add(key, 0, timeout=WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=WINDOW_SECONDS)


def clear_login_failures(username: str) -> None:
    """A successful sign-in forgets the username's failures (not the IP's)."""
    cache.delete(_keys("", username)[1])
