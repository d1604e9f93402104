"""The live publisher: pushes dashboard updates shortly after events happen, not on a 1 s timer.

A per-second timer (the beat task) shows an event up to one full period after it happened, plus
the time to build and send the snapshot: the event benchmark measured 1.0-1.6 s. Here the
writers wake the publisher instead: ``live.bump_counters`` publishes the tenants it touched on a
Redis pub/sub channel in the pipeline it already sends (one command per committed batch). The
publisher then

- pushes to the operators' group and the touched tenants' groups as soon as it is woken, but at
  most once per ``min_gap`` seconds (0.25 s): a burst of batches costs one snapshot per group,
  and an event waits at most ``min_gap`` plus the time to build and send;
- still sends the full per-second update (every active tenant, so charts move when nothing
  happens) just after each second boundary, aligned to the wall clock (``time.time()``) rather
  than on a drifting timer.

One publisher runs at a time: it holds a Redis lease (``live.PUBLISHER_KEY``, renewed every
second, lost after ``LEASE_SECONDS``), so several processes may run it (for availability) and
only one sends. While a publisher holds the lease the beat task ``broadcast_live`` does nothing;
without one it remains the once-a-second fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.db import close_old_connections

from analytics.services import live

logger = logging.getLogger(__name__)

MIN_GAP = 0.25  # seconds between two pushes to the same groups
TICK_DELAY = 0.005  # after the second boundary: the closed second's last bumps have landed
LEASE_SECONDS = 3.0

# Take the lease if it is free or already ours, and extend it; 1 if held, 0 if another has it.
_LEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] or redis.call('set', KEYS[1], ARGV[1], 'NX') then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return 1
end
return 0
"""


class LivePublisher:
    """Decides when to push and to whom; :meth:`run` is the loop around it.

    ``clock`` returns epoch seconds; tests pass their own and drive :meth:`note` and
    :meth:`publish_due` directly.
    """

    def __init__(
        self,
        *,
        min_gap: float = MIN_GAP,
        tick_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        broadcast: Callable[..., int] = live.broadcast_live_update,
    ) -> None:
        self.min_gap = min_gap
        self.tick_seconds = tick_seconds
        self.clock = clock
        self.broadcast = broadcast
        self.pending: set[int] = set()
        self.last_push = -math.inf
        self.next_tick = self._tick_after(clock())
        self.token = uuid.uuid4().hex
        self.send: Callable[[str, dict[str, Any]], Any] | None = None  # set by run()
        # Final per-second/minute counts kept between snapshots (reset each minute, so tenants
        # that went quiet are forgotten): a push reads ~4 hashes per group, not 120.
        self.memo: live.FinalBuckets = {}
        self.memo_reset_at = math.floor(clock() / 60) * 60 + 60

    def _tick_after(self, now: float) -> float:
        period = self.tick_seconds
        return (math.floor(now / period) + 1) * period + TICK_DELAY

    def note(self, data: bytes | str) -> None:
        """A writer's wake-up: comma-separated organization ids with new events."""
        text = data.decode() if isinstance(data, bytes) else data
        self.pending.update(int(part) for part in text.split(",") if part.isdigit())

    def deadline(self) -> float:
        """When :meth:`publish_due` has something to send next (epoch seconds)."""
        if self.pending:
            return min(self.next_tick, self.last_push + self.min_gap)
        return self.next_tick

    def publish_due(self, now: float | None = None) -> list[int] | None:
        """Send what is due at ``now``; returns the tenants pushed to (``[]``: operators only;
        ``None``: nothing was due). The per-second tick sends to every active tenant."""
        now = self.clock() if now is None else now
        if now >= self.memo_reset_at:
            self.memo, self.memo_reset_at = {}, math.floor(now / 60) * 60 + 60
        options: dict[str, Any] = {"send": self.send, "memo": self.memo}
        if now >= self.next_tick:
            self.broadcast(now, **options)
            self.next_tick = self._tick_after(now)
            pushed = sorted(self.pending)
        elif self.pending and now >= self.last_push + self.min_gap:
            pushed = sorted(self.pending)
            self.broadcast(now, organizations=pushed, **options)
        else:
            return None
        self.pending.clear()
        self.last_push = now
        return pushed

    # --- the loop --------------------------------------------------------------------------

    def hold_lease(self) -> bool:
        redis = live._redis()
        return bool(
            redis.eval(_LEASE_SCRIPT, 1, live.PUBLISHER_KEY, self.token, int(LEASE_SECONDS * 1000))
        )

    def release_lease(self) -> None:
        redis = live._redis()
        if redis.get(live.PUBLISHER_KEY) == self.token.encode():
            redis.delete(live.PUBLISHER_KEY)

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set. Survives Redis outages (retries every second).

        Sends go through one event loop kept for the whole run, so the channel layer's Redis
        connections are reused (``async_to_sync`` per send would set up a loop each time).
        """
        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        if layer is not None:
            self.send = lambda group, message: loop.run_until_complete(
                layer.group_send(group, message)
            )
        try:
            self._run(stop)
        finally:
            self.send = None
            loop.close()  # channels_redis closes this loop's connections on close

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            pubsub: Any = None
            try:
                pubsub = live._redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(live.wake_channel())
                self._serve(pubsub, stop)
            except Exception:  # noqa: BLE001 - Redis down: live updates pause, nothing else
                logger.warning("live publisher: Redis unavailable; retrying", exc_info=True)
                stop.wait(1.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # already broken
                        pubsub.close()
        with contextlib.suppress(Exception):  # Redis down: the lease expires by itself
            self.release_lease()

    def _serve(self, pubsub: Any, stop: threading.Event) -> None:
        is_leader, renew_at = False, 0.0
        while not stop.is_set():
            now = self.clock()
            if now >= renew_at:
                is_leader, renew_at = self.hold_lease(), now + 1.0
            if not is_leader:  # another process publishes; stand by, keep the channel drained
                self.pending.clear()
                while pubsub.get_message(timeout=0.0) is not None:
                    pass
                stop.wait(1.0)
                self.next_tick = self._tick_after(self.clock())
                continue
            wait = max(0.0, min(self.deadline(), renew_at) - now)
            message = pubsub.get_message(timeout=wait)
            for _ in range(1000):  # take the wake-ups already queued (bounded), then decide
                if message is None:
                    break
                if message.get("type") == "message":
                    self.note(message["data"])
                message = pubsub.get_message(timeout=0.0)
            close_old_connections()  # snapshots read queue figures from the database
            self.publish_due()


def is_publisher_running() -> bool:
    """Whether a live publisher holds the lease (the beat task then stays quiet)."""
    try:
        return bool(live._redis().exists(live.PUBLISHER_KEY))
    except Exception:  # noqa: BLE001 - Redis down: the beat task's own send fails anyway
        return False
