from __future__ import annotations

from django.urls import path

from analytics.consumers import DashboardConsumer
from webmail.consumers import MailConsumer

websocket_urlpatterns = [
    path("ws/mail/", MailConsumer.as_asgi()),
    path("ws/analytics/", DashboardConsumer.as_asgi()),
]
