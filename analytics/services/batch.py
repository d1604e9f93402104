"""A per-process event buffer for producers outside any transaction (tracking hits).

``submit`` appends to an in-memory list and returns at once; a daemon thread writes the list
with one multi-row INSERT when it holds ``max_rows`` events or its oldest event is
``max_delay`` seconds old, whichever comes first. The price: events buffered by a process that
dies in that window (100 ms by default) are lost, which is acceptable for opens and clicks and
is why state-changing producers (delivery, inbound, unsubscribe) record inside their own
transaction instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, transaction

from analytics.services.events import EventInput, record_events
from config.metrics import (
    EVENT_FLUSHED_EVENTS,
    EVENT_FLUSHES,
    EVENT_LAG,
    count_if_database_error,
)

logger = logging.getLogger(__name__)


class EventBuffer:
    def __init__(
        self,
        *,
        max_rows: int = 500,
        max_delay: float = 0.1,
        writer: Callable[[list[EventInput]], int] | None = None,
    ) -> None:
        self.max_rows = max_rows
        self.max_delay = max_delay
        self._writer = writer or _write
        self._items: list[EventInput] = []
        self._first_at = 0.0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one write at a time; flush() waits for it
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.flushed = 0

    def submit(self, event: EventInput) -> None:
        with self._lock:
            if not self._items:
                self._first_at = time.monotonic()
            self._items.append(event)
            full = len(self._items) >= self.max_rows
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="event-buffer", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._items)

    def flush(self) -> int:
        """Write what is buffered now (the thread calls this; tests and shutdown may too).

        Returns after any write in progress has finished, so after ``flush()`` every event
        submitted before it is in the database.
        """
        with self._write_lock:
            with self._lock:
                items, self._items = self._items, []
                first_at = self._first_at
            if not items:
                return 0
            try:
                written = self._writer(items)
            except Exception as exc:  # noqa: BLE001 - keep serving; the rows are logged, not retried
                count_if_database_error("event_buffer", exc)
                EVENT_FLUSHES.labels("error").inc()
                EVENT_FLUSHED_EVENTS.labels("dropped").inc(len(items))
                logger.exception("could not write %d buffered events", len(items))
                return 0
            EVENT_FLUSHES.labels("ok").inc()
            EVENT_FLUSHED_EVENTS.labels("written").inc(written)
            EVENT_LAG.observe(time.monotonic() - first_at)
            self.flushed += written
            return written

    def _run(self) -> None:
        while True:
            with self._lock:
                waiting = bool(self._items)
                due = self._first_at + self.max_delay - time.monotonic() if waiting else None
            if due is None:
                self._wake.wait(1.0)
            elif due > 0:
                self._wake.wait(due)
            self._wake.clear()
            with self._lock:
                ready = self._items and (
                    len(self._items) >= self.max_rows
                    or time.monotonic() - self._first_at >= self.max_delay
                )
            if ready:
                self.flush()


def _write(items: list[EventInput]) -> int:
    close_old_connections()
    with transaction.atomic():
        return record_events(items)


buffer = EventBuffer()


def submit_event(event: EventInput) -> None:
    """Queue one event for the next batched INSERT of this process; never blocks on the DB."""
    buffer.submit(event)
