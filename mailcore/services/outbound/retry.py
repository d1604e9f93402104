"""When to try again, and what an SMTP reply means. Pure functions; the clock is passed in.

Backoff: attempt n waits ``base * 2**(n-1)`` capped at ``cap`` (defaults 60 s and 3600 s: 1, 2,
4, 8, 16, 32 then 60 minutes), times a jitter factor in [0.75, 1.25) so a destination that
came back is not hit by every deferred message in the same second. Temporary failures become
final once the delivery is older than ``MAILROOM_MAX_RETRY_AGE`` (default 3 days): the last
retry is moved to the expiry moment, and a temporary failure at or after it is ``failed``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


class Kind(enum.StrEnum):
    DELIVERED = "delivered"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Decision:
    status: str  # delivered | deferred | bounced | failed
    next_attempt_at: datetime | None


def retry_delay(
    attempt: int,
    *,
    base_seconds: float,
    cap_seconds: float,
    rand: Callable[[], float] = random.random,
) -> timedelta:
    """The wait after the ``attempt``-th try (1-based) failed temporarily."""
    exponent = min(max(attempt, 1) - 1, 32)
    delay = min(cap_seconds, base_seconds * (2**exponent))
    return timedelta(seconds=delay * (0.75 + rand() / 2))


def decide(
    kind: Kind,
    *,
    attempt: int,
    now: datetime,
    expires_at: datetime,
    base_seconds: float,
    cap_seconds: float,
    rand: Callable[[], float] = random.random,
) -> Decision:
    if kind is Kind.DELIVERED:
        return Decision("delivered", None)
    if kind is Kind.PERMANENT:
        return Decision("bounced", None)
    if now >= expires_at:
        return Decision("failed", None)
    delay = retry_delay(attempt, base_seconds=base_seconds, cap_seconds=cap_seconds, rand=rand)
    return Decision("deferred", min(now + delay, expires_at))


def kind_of_reply(code: int | None) -> Kind:
    """2xx delivered, 5xx permanent; 4xx, no reply and anything odd are temporary."""
    if code is not None and 200 <= code < 300:
        return Kind.DELIVERED
    if code is not None and 500 <= code < 600:
        return Kind.PERMANENT
    return Kind.TEMPORARY
