"""Pushes of flag and move changes reach the mailbox's users (other tabs), and nobody else."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from mailcore.models import Mailbox, Message
from mailcore.services import messages as service
from tests.support import ws_connect
from tests.webmail.conftest import folder, receive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_flag_and_move_pushes(alice: Mailbox, bob: Mailbox, charlie: Mailbox) -> None:
    message: Message = await database_sync_to_async(receive)(alice, "Pushed")
    inbox = await database_sync_to_async(folder)(alice, "inbox")
    archive = await database_sync_to_async(folder)(alice, "archive")
    sockets = [await ws_connect(m.user) for m in (alice, bob, charlie)]
    alice_ws, bob_ws, charlie_ws = sockets

    await database_sync_to_async(service.set_seen)([message], True)
    expected = {
        "event": "flags",
        "is_seen": True,
        "mailbox_id": alice.id,
        "message_ids": [message.id],
        "folders": [{"id": inbox.id, "total": 1, "unread": 0}],
    }
    assert await alice_ws.receive_json_from(timeout=5) == expected
    assert await bob_ws.receive_json_from(timeout=5) == expected

    await database_sync_to_async(service.set_flagged)([message], True)
    starred = {
        "event": "flags",
        "is_flagged": True,
        "mailbox_id": alice.id,
        "message_ids": [message.id],
        "folders": [],
    }
    assert await alice_ws.receive_json_from(timeout=5) == starred
    assert await bob_ws.receive_json_from(timeout=5) == starred

    await database_sync_to_async(service.move_to_role)(alice.user, [message], "archive")
    moved = {
        "event": "moved",
        "folder_id": archive.id,
        "mailbox_id": alice.id,
        "message_ids": [message.id],
        "folders": [
            {"id": inbox.id, "total": 0, "unread": 0},
            {"id": archive.id, "total": 1, "unread": 0},
        ],
    }
    assert await alice_ws.receive_json_from(timeout=5) == moved
    assert await bob_ws.receive_json_from(timeout=5) == moved
    assert await charlie_ws.receive_nothing(timeout=0.5)
    for ws in sockets:
        await ws.disconnect()


async def test_ping_is_answered(alice: Mailbox) -> None:
    ws = await ws_connect(alice.user)
    await ws.send_json_to({"action": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"event": "pong"}
    await ws.send_json_to({"action": "subscribe", "mailbox": 1})  # ignored, nothing comes back
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()
