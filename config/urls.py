from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("mailcore.urls")),
    path("admin/", admin.site.urls),
    path("", include("webmail.urls")),
]
