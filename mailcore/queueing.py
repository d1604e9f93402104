"""The one way mailcore enqueues Celery tasks: after the current transaction commits.

A task sent inside a transaction can run before the commit and find nothing (or run for a
transaction that rolls back), so services never call ``.delay()`` themselves. Tasks only carry
wake-ups: if the broker is down the send is logged and dropped, and the beat job re-finds the
work in the database.
"""

from __future__ import annotations

import logging
from functools import partial
from importlib import import_module
from typing import Any

from django.core.cache import cache
from django.db import transaction

log = logging.getLogger(__name__)


def enqueue_on_commit(
    task: str, *args: Any, dedupe_key: str = "", dedupe_seconds: int = 30, **kwargs: Any
) -> None:
    """Send ``task`` (dotted path, e.g. ``"mailcore.tasks.dispatch_outbound"``) after commit.

    With ``dedupe_key`` the task is sent only if no send with that key is pending: the key is
    set here and the task deletes it when it starts, so a burst of commits wakes one task, not
    thousands. (If Redis is down the task is sent anyway.) Arguments must be JSON-safe.
    """
    transaction.on_commit(partial(_send, task, args, kwargs, dedupe_key, dedupe_seconds))


def _send(
    task: str, args: tuple[Any, ...], kwargs: dict[str, Any], dedupe_key: str, dedupe_seconds: int
) -> None:
    try:
        if dedupe_key and cache.add(dedupe_key, 1, timeout=dedupe_seconds) is False:
            return
        module, _, name = task.rpartition(".")
        getattr(import_module(module), name).apply_async(args=args, kwargs=kwargs)
    except Exception:
        log.warning("could not enqueue %s; the beat job will catch up", task, exc_info=True)
