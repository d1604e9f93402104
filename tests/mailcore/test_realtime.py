"""New mail is pushed to the mailbox's users over the websocket, and to nobody else."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from mailcore.models import Mailbox
from tests.factories import deliver, make_email
from tests.support import ws_connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_delivery_pushes_new_mail_to_owner_and_sharer_only(
    alice: Mailbox, bob: Mailbox, charlie: Mailbox
) -> None:
    alice_ws = await ws_connect(alice.user)
    bob_ws = await ws_connect(bob.user)  # alice's mailbox is shared with bob
    charlie_ws = await ws_connect(charlie.user)
    outcome = await database_sync_to_async(deliver)(
        make_email(subject="Live"), "alice@example.test"
    )
    inbox_id = await database_sync_to_async(lambda: alice.folders.get(role="inbox").id)()
    expected = {
        "event": "new_mail",
        "mailbox_id": alice.id,
        "message_ids": outcome.message_ids,
        "folders": [{"id": inbox_id, "total": 1, "unread": 1}],
    }
    assert await alice_ws.receive_json_from(timeout=5) == expected
    assert await bob_ws.receive_json_from(timeout=5) == expected
    assert await charlie_ws.receive_nothing(timeout=0.5)
    for ws in (alice_ws, bob_ws, charlie_ws):
        await ws.disconnect()


async def test_anonymous_websocket_is_refused() -> None:
    communicator = WebsocketCommunicator(
        application, "/ws/mail/", headers=[(b"origin", b"http://localhost")]
    )
    connected, code = await communicator.connect()
    assert connected is False
    assert code == 4401
