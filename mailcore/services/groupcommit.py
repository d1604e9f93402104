"""Group commit for writers called from many threads of one process.

Callers (API worker threads, the submission server's thread pool, benchmark threads) hand
their item to :meth:`GroupCommitter.submit` and block until it is durable. One thread of the
committer takes whatever is waiting, up to ``max_batch`` items, and writes them with one call
of ``write`` (one database transaction, one commit, one events INSERT); every caller then gets
its own result or exception. When only one caller is active a batch is one item and nothing
waits for a timer, so an idle process pays one thread hand-off (tens of microseconds); under
load the commit, the round trips and the after-commit work are shared by the whole batch.

The inbound receiver does the same on its event loop (``mailcore.smtp.queue``); this is the
thread-world twin for code that is not async.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from django.db import close_old_connections

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# ``write`` returns one entry per item: its result, or the exception that item alone raised.
WriteFunction = Callable[[Sequence[T]], Sequence["R | BaseException"]]


class GroupCommitter(Generic[T, R]):
    def __init__(self, write: WriteFunction[T, R], *, max_batch: int = 64, name: str) -> None:
        self.write = write
        self.max_batch = max_batch
        self.name = name
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[T, Future[R]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.batches = 0
        self.items = 0

    def submit(self, item: T) -> R:
        """Write ``item`` in the next batch; returns its result once committed (or raises)."""
        future: Future[R] = Future()
        self._ensure_thread()
        self._queue.put((item, future))
        return future.result()

    def _ensure_thread(self) -> None:
        # A forked child (gunicorn, celery prefork) inherits the object but not the thread.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[tuple[T, Future[R]]]) -> None:
        """Write one batch and settle every future in it, whatever happens."""
        items = [item for item, _ in batch]
        try:
            close_old_connections()  # a connection broken by a database restart is replaced
            results: Sequence[R | BaseException] = self.write(items)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
            log.exception("%s: batch of %d failed", self.name, len(items))
            results = [exc] * len(items)
        self.batches += 1
        self.items += len(items)
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
