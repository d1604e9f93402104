from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("api.urls")),
    path("", include("mailcore.urls")),
    path("", include("analytics.urls")),
    path("admin/", admin.site.urls),
    path("", include("webmail.urls")),
]

# JSON for unknown /api/ and /v3/ URLs, Django's pages elsewhere.
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
