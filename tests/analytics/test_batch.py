"""The event buffer flushes on size and on time, in one INSERT per batch."""

from __future__ import annotations

import threading
import time

import pytest

from analytics.models import Event
from analytics.services.batch import EventBuffer, _write
from analytics.services.events import EventInput

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.done = threading.Event()

    def __call__(self, items: list[EventInput]) -> int:
        written = _write(items)
        self.batches.append(written)
        self.done.set()
        return written


def _event(n: int) -> EventInput:
    return EventInput(organization_id=3, type="opened", recipient=f"r{n}@x.test")


def test_flushes_when_full_without_waiting_for_the_delay() -> None:
    recorder = Recorder()
    buffer = EventBuffer(max_rows=10, max_delay=30.0, writer=recorder)
    for n in range(10):
        buffer.submit(_event(n))
    assert recorder.done.wait(5)
    assert recorder.batches == [10]
    assert Event.objects.count() == 10
    assert buffer.pending() == 0


def test_flushes_a_partial_batch_after_the_delay() -> None:
    recorder = Recorder()
    buffer = EventBuffer(max_rows=1000, max_delay=0.2, writer=recorder)
    started = time.monotonic()
    for n in range(3):
        buffer.submit(_event(n))
    assert Event.objects.count() == 0
    assert recorder.done.wait(5)
    assert time.monotonic() - started >= 0.2
    assert recorder.batches == [3]
    assert sorted(Event.objects.values_list("recipient", flat=True)) == [
        "r0@x.test",
        "r1@x.test",
        "r2@x.test",
    ]
