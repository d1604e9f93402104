"""The project's URLs plus ``/bench/ceiling/``: a bare Django + DRF view doing one INSERT.

It is the ceiling ``bench/api.py`` compares the real send endpoints with: same server, same
workers, same request size, no auth, no rate limit, no MIME, one row.
"""

from __future__ import annotations

from django.urls import include, path
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.models import Event


class CeilingView(APIView):
    authentication_classes: list = []  # type: ignore[type-arg]
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def post(self, request: Request) -> Response:
        event = Event.objects.create(
            organization_id=0, type="sent", recipient=str(request.data.get("to", ""))[:254]
        )
        return Response({"id": event.id}, status=202)


urlpatterns = [
    path("bench/ceiling/", CeilingView.as_view()),
    path("", include("config.urls")),
]
