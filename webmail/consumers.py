"""The webmail's live channel: one group per signed-in user.

Services push to ``user.<id>`` after commit (``mailcore.services.realtime``); this consumer only
relays. A user only ever joins their own group, and services address pushes to the users who
may see the mailbox, so nothing of another user's mail can arrive here.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from mailcore.services.realtime import user_group


class MailConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = user_group(user.id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Keep-alive from the page; anything else is ignored (the browser never asks for data
        # here: it reads over HTTP, through the access layer).
        if isinstance(content, dict) and content.get("action") == "ping":
            await self.send_json({"event": "pong"})

    async def mail_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["data"])
