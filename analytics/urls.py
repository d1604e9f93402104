from __future__ import annotations

from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("t/o/<str:token>.gif", views.open_pixel, name="open"),
    path("t/c/<str:token>", views.click, name="click"),
    path("t/u/<str:token>", views.unsubscribe, name="unsub"),
    path("analytics/", views.dashboard, name="dashboard"),
    path("analytics/events/", views.event_search, name="events"),
    path("analytics/stats/", views.stats_page, name="stats"),
    path("analytics/stats.json", views.stats_json, name="stats_json"),
    path("analytics/domains/<int:domain_id>/resume", views.resume_domain, name="resume"),
    path("analytics/messages/<int:message_id>/timeline.json", views.timeline, name="timeline"),
    path("analytics/timeline.json", views.timeline, name="timeline_by_header"),
]
