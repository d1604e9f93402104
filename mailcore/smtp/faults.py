"""Fault injection for the resilience tests (tests/resilience); inert unless configured.

``MAILROOM_FAULT_POINT`` names one point on a message's way through the MX receiver:

- ``mid_data``: the first DATA chunk was read, the end of data not yet processed;
- ``before_commit``: the end of data was seen, the storing transaction has not started;
- ``after_commit``: the transaction committed, the ``250`` not yet written;
- ``after_reply``: the ``250`` was written.

At the armed point the receiver writes ``fault point <name> reached`` to stderr and waits
``MAILROOM_FAULT_DELAY`` seconds, so a test that watches the log can kill -9 the process inside
that window every time instead of hoping a random moment lands there. With the setting empty
(the default) or ``MAILROOM_ENV=production`` each hook is one string comparison.
"""

from __future__ import annotations

import asyncio
import sys
import time

from django.conf import settings

POINTS = ("mid_data", "before_commit", "after_commit", "after_reply")


def _is_armed(point: str) -> bool:
    if point != settings.MAILROOM_FAULT_POINT or settings.MAILROOM_ENV == "production":
        return False
    sys.stderr.write(f"fault point {point} reached\n")
    sys.stderr.flush()
    return True


def pause(point: str) -> None:
    """On a worker thread: wait at ``point`` if it is armed."""
    if _is_armed(point):
        time.sleep(settings.MAILROOM_FAULT_DELAY)


async def pause_async(point: str) -> None:
    """On the event loop: wait at ``point`` if it is armed (other sessions go on)."""
    if _is_armed(point):
        await asyncio.sleep(settings.MAILROOM_FAULT_DELAY)
