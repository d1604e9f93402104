"""Pushes to browsers over Channels groups, always after the change has committed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Push:
    user_ids: tuple[int, ...]
    payload: dict[str, Any]


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


async def send_pushes(pushes: Sequence[Push]) -> None:
    """Send now. Failures are logged, not raised: a push is a hint, the database is the truth."""
    layer = get_channel_layer()
    if layer is None:
        return
    for push in pushes:
        message = {"type": "mail.event", "data": push.payload}
        for user_id in push.user_ids:
            try:
                await layer.group_send(user_group(user_id), message)
            except Exception:  # Redis down: the browser catches up on reconnect.
                log.warning("push to user %s failed", user_id, exc_info=True)


def push_on_commit(pushes: Sequence[Push]) -> None:
    """Send ``pushes`` once the current transaction commits (now, outside a transaction)."""
    if pushes:
        transaction.on_commit(lambda: async_to_sync(send_pushes)(list(pushes)))
