"""The live publisher: writers wake it, it pushes within MIN_GAP, ticks each second, and only
one process publishes at a time."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from analytics import tasks
from analytics.services import live
from analytics.services.events import EventInput, record_events
from analytics.services.publisher import MIN_GAP, LivePublisher, is_publisher_running


def test_committed_events_wake_the_publisher_with_their_tenants() -> None:
    pubsub = live._redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.wake_channel())
    try:
        live.bump_counters(Counter({(7, "delivered"): 2, (5, "opened"): 1, (7, "bounced"): 1}))
        message = None
        for _ in range(50):
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                break
        assert message is not None and message["data"] == b"5,7"
        assert pubsub.get_message(timeout=0.1) is None  # one wake-up per batch, not per event
    finally:
        pubsub.close()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, list[int] | None]] = []

    def __call__(self, now: float, organizations: list[int] | None = None, **options) -> int:  # type: ignore[no-untyped-def]
        assert set(options) == {"send", "memo"}
        self.calls.append((now, organizations))
        return 1


def test_pushes_right_after_a_wake_coalesces_bursts_and_ticks_after_each_second() -> None:
    sent = Recorder()
    publisher = LivePublisher(clock=lambda: 100.5, broadcast=sent)
    assert publisher.deadline() == pytest.approx(101.005)
    assert publisher.publish_due(100.6) is None  # nothing happened, no tick yet

    publisher.note(b"5")
    assert publisher.publish_due(100.6) == [5]  # the first wake-up goes out at once
    publisher.note(b"5,7")
    publisher.note("9")
    assert publisher.deadline() == pytest.approx(100.6 + MIN_GAP)
    assert publisher.publish_due(100.7) is None  # a burst waits for MIN_GAP...
    assert publisher.publish_due(100.85) == [5, 7, 9]  # ...and goes out as one push
    assert publisher.publish_due(101.0) is None
    assert publisher.publish_due(101.005) == []  # the tick: every active tenant
    assert sent.calls == [(100.6, [5]), (100.85, [5, 7, 9]), (101.005, None)]
    # The worst case: an event right after a push waits MIN_GAP, not a whole second.
    publisher.note(b"5")
    assert publisher.deadline() - 101.006 < MIN_GAP


def test_only_one_publisher_holds_the_lease() -> None:
    first, second = LivePublisher(), LivePublisher()
    assert first.hold_lease() is True
    assert second.hold_lease() is False
    assert first.hold_lease() is True  # renewing its own lease
    assert is_publisher_running() is True
    assert tasks.broadcast_live() == 0  # the beat fallback stays quiet
    first.release_lease()
    assert is_publisher_running() is False
    assert second.hold_lease() is True


def _deliver(organization_id: int, count: int) -> None:
    with transaction.atomic():
        record_events(
            EventInput(organization_id=organization_id, type="delivered") for _ in range(count)
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_event_reaches_the_operators_group_without_waiting_for_a_tick() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(live.OPERATORS_GROUP, channel)
    stop = threading.Event()
    publisher = LivePublisher(tick_seconds=3600)  # no per-second tick: only pushes
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for _ in range(100):  # running (subscribed, then leased)
            if await database_sync_to_async(is_publisher_running)():
                break
            await asyncio.sleep(0.05)
        await database_sync_to_async(_deliver)(42, 3)
        update = await asyncio.wait_for(layer.receive(channel), 5)
        while update["hour"].get("delivered", 0) == 0:  # an hourly tick may come first
            update = await asyncio.wait_for(layer.receive(channel), 5)
        assert (update["scope"], update["hour"]["delivered"]) == ("all", 3)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert await database_sync_to_async(is_publisher_running)() is False  # lease given back


@pytest.mark.django_db
def test_snapshots_with_the_memo_of_final_buckets_equal_fresh_reads() -> None:
    now = 1_800_000_030.5  # 30.5 s into a minute
    for back in (0, 1, 2, 5, 59, 61, 300):
        live.bump_counters(Counter({(3, "delivered"): back + 1, (3, "opened"): 1}), now - back)
    memo: live.FinalBuckets = {}
    first = live.build_snapshot(3, now, memo)
    assert first == live.build_snapshot(3, now)
    assert first["hour"]["delivered"] == sum(b + 1 for b in (0, 1, 2, 5, 59, 61, 300))
    # Final seconds (ended more than SETTLE_SECONDS ago) and minutes are kept; open ones are not.
    assert len(memo["live:s:3"]) == 60 - 1 - live.SETTLE_SECONDS
    assert len(memo["live:m:3"]) == 59
    # New events land in the open buckets, which are read again each time.
    live.bump_counters(Counter({(3, "delivered"): 1000}), now)
    later = live.build_snapshot(3, now + 0.4, memo)
    assert later == live.build_snapshot(3, now + 0.4)
    assert later["hour"]["delivered"] == first["hour"]["delivered"] + 1000
    assert later["series"]["delivered"][-1] == 1001
