"""The live dashboard channel: per-second updates for staff, refusals for everyone else."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from analytics.services import live
from analytics.services.events import EventInput, record_events
from config.asgi import application
from mailcore.models import Mailbox, User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def open_socket(user, query: str = "") -> tuple[bool, WebsocketCommunicator]:  # type: ignore[no-untyped-def]
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/analytics/{query}",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost")],
    )
    connected, _ = await communicator.connect()
    return connected, communicator


def _make_staff(mailbox: Mailbox) -> User:
    mailbox.user.is_staff = True
    mailbox.user.save(update_fields=["is_staff"])
    return mailbox.user


def _events(org: int, kind: str, count: int) -> None:
    record_events(EventInput(organization_id=org, type=kind) for _ in range(count))


async def test_operator_and_tenant_staff_receive_per_second_updates(
    alice: Mailbox, charlie: Mailbox
) -> None:
    operator = await database_sync_to_async(User.objects.create_superuser)("root", password="x")
    staff = await database_sync_to_async(_make_staff)(alice)
    ok, operator_ws = await open_socket(operator)
    assert ok
    ok, alice_ws = await open_socket(staff, f"?org={alice.organization_id}")
    assert ok
    first = await alice_ws.receive_json_from(timeout=5)
    assert (first["scope"], first["hour"]["delivered"]) == (str(alice.organization_id), 0)
    assert (await operator_ws.receive_json_from(timeout=5))["scope"] == "all"

    await database_sync_to_async(_events)(alice.organization_id, "delivered", 4)
    await database_sync_to_async(_events)(charlie.organization_id, "delivered", 7)
    await database_sync_to_async(_events)(alice.organization_id, "opened", 2)

    async def broadcaster() -> None:
        while True:
            await database_sync_to_async(live.broadcast_live_update)()
            await asyncio.sleep(1.0)

    task = asyncio.create_task(broadcaster())
    try:
        updates = [await alice_ws.receive_json_from(timeout=5) for _ in range(3)]
        ops = [await operator_ws.receive_json_from(timeout=5) for _ in range(3)]
    finally:
        task.cancel()
    seconds = [u["second"] for u in updates]
    assert seconds[2] - seconds[0] in (2, 3)  # one update per second
    assert [u["hour"]["delivered"] for u in updates] == [4, 4, 4]  # charlie's 7 never appear
    assert updates[-1]["hour"]["opened"] == 2
    assert sum(updates[-1]["series"]["delivered"]) == 4
    assert [u["hour"]["delivered"] for u in ops] == [11, 11, 11]
    assert set(updates[0]) >= {
        "rates",
        "queue_depth",
        "oldest_queued_seconds",
        "latency",
        "bounce_rate",
        "complaint_rate",
    }
    await alice_ws.disconnect()
    await operator_ws.disconnect()


async def test_non_staff_and_other_tenants_are_refused(
    alice: Mailbox, bob: Mailbox, charlie: Mailbox
) -> None:
    staff = await database_sync_to_async(_make_staff)(alice)
    ok, ws = await open_socket(bob.user, f"?org={bob.organization_id}")
    assert not ok
    ok, ws = await open_socket(bob.user)
    assert not ok
    ok, ws = await open_socket(staff, f"?org={charlie.organization_id}")
    assert not ok
    anonymous = WebsocketCommunicator(
        application, "/ws/analytics/", headers=[(b"origin", b"http://localhost")]
    )
    connected, _ = await anonymous.connect()
    assert not connected
    # Tenant staff without ?org get their own tenant, never the operators' view.
    ok, ws = await open_socket(staff)
    assert ok
    assert (await ws.receive_json_from(timeout=5))["scope"] == str(alice.organization_id)
    await ws.disconnect()
