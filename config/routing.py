from __future__ import annotations

from django.urls import path

from webmail.consumers import MailConsumer

websocket_urlpatterns = [
    path("ws/mail/", MailConsumer.as_asgi()),
]
