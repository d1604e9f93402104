"""Stopping dispatchers that run inside Celery workers when the worker is told to stop.

A dispatcher stopped through ``DispatchOptions.stop`` finishes the SMTP transactions in progress,
records their results, and gives back every claimed row it has not started (due at once, lease
cleared) so another worker takes them without waiting for the lease to run out.

Celery's warm shutdown (SIGTERM to the main process) only waits for running tasks; by itself it
would let a dispatch pass go on claiming for up to a minute. So:

- in the main process (``worker_shutting_down``), every dispatcher of this process is stopped
  (solo/threads pools) and each pool child running ``dispatch_outbound`` is sent SIGTERM;
- while a dispatcher runs on a process's main thread, SIGTERM stops it instead of killing the
  process mid-transaction (billiard's child handler raises SystemExit wherever the code is);
  this also covers a supervisor that signals the whole process group, like systemd. The
  previous handler comes back when the dispatcher returns.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

DISPATCH_TASK = "mailcore.tasks.dispatch_outbound"

_running: set[threading.Event] = set()
_lock = threading.Lock()


@contextmanager
def stoppable(stop: threading.Event) -> Iterator[None]:
    """Register a running dispatcher's stop event; SIGTERM sets it while the block runs."""
    with _lock:
        _running.add(stop)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        with _lock:
            _running.discard(stop)


def request_stop() -> int:
    """Ask every dispatcher of this process to stop; returns how many were running."""
    with _lock:
        for stop in _running:
            stop.set()
        return len(_running)


_handling = [False]


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Set every running dispatcher's stop event, without taking ``_lock``.

    A handler runs on the main thread between any two bytecodes, so it must never wait for a
    lock its own thread may hold: SIGTERM can land inside ``stoppable``'s locked block, or twice
    in a row (a supervisor signals the process group and Celery's main process forwards its
    own), and the second would wait forever inside the first. Copying the set into a tuple is
    one step under the GIL; a nested call returns at once because the outer one does the work.
    """
    if _handling[0]:
        return
    _handling[0] = True
    try:
        for stop in tuple(_running):
            stop.set()
    finally:
        _handling[0] = False


def stop_worker_dispatchers() -> int:
    """In a Celery main process starting a warm shutdown: stop dispatchers here and in the pool.

    Returns how many were signalled.
    """
    from celery.worker import state

    stopped = request_stop()
    for request in list(state.active_requests):
        pid = getattr(request, "worker_pid", None)
        if request.name == DISPATCH_TASK and pid and pid != os.getpid():
            try:
                os.kill(pid, signal.SIGTERM)
                stopped += 1
            except ProcessLookupError:
                pass  # it finished meanwhile
    if stopped:
        log.warning("warm shutdown: stopping %d outbound dispatcher(s)", stopped)
    return stopped
