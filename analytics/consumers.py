"""The live dashboard's channel: operators join ``analytics.operators``, tenant staff
``analytics.org.<id>``. The live publisher (analytics/services/publisher.py) sends compact
updates to each group, within 0.25 s of new events and after every second (the beat task
``analytics.tasks.broadcast_live`` when no publisher runs); this consumer only relays.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from analytics.access import analytics_scope_for_user
from analytics.services import live


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        requested = query.get("org", [""])[0]
        try:
            scope = await database_sync_to_async(analytics_scope_for_user)(
                self.scope.get("user"), int(requested) if requested.isdigit() else None
            )
        except Http404:
            await self.close(code=4403)
            return
        if scope is None:
            self.group = live.OPERATORS_GROUP
        else:
            self.group = live.org_group(scope)
            await database_sync_to_async(live.watch_organization)(scope, int(time.time()))
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # The first picture at once, not after the next tick.
        snapshot = await database_sync_to_async(live.build_snapshot)(scope)
        await self.send_json(snapshot)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def analytics_update(self, message: dict[str, Any]) -> None:
        await self.send_json(message)
