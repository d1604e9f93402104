"""Native API: webhook endpoints, their test POST and delivery log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from api import serializers as s
from api.access import get_webhook_for_organization
from api.errors import ApiError
from api.models import WebhookEndpoint
from api.services.webhooks import WebhookError, create_endpoint, send_test
from api.views.base import ApiView, int_param


class WebhooksView(ApiView):
    required_scope = "webhooks"

    @extend_schema(responses={200: s.WebhookOut(many=True)})
    def get(self, request: Request) -> Response:
        endpoints = WebhookEndpoint.objects.filter(organization_id=self.organization_id)
        return Response({"items": s.WebhookOut(endpoints.order_by("id"), many=True).data})

    @extend_schema(request=s.WebhookIn, responses={201: s.WebhookCreatedOut})
    def post(self, request: Request) -> Response:
        serializer = s.WebhookIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            endpoint = create_endpoint(
                self.organization_id,
                data["url"],
                format=data["format"],
                event_types=data["event_types"],
            )
        except WebhookError as exc:
            raise ApiError(str(exc), fields={exc.field: [str(exc)]}) from exc
        return Response(s.WebhookCreatedOut(endpoint).data, status=201)


class WebhookDetailView(ApiView):
    required_scope = "webhooks"

    @extend_schema(responses={200: s.WebhookOut})
    def get(self, request: Request, webhook_id: int) -> Response:
        endpoint = get_webhook_for_organization(self.organization_id, webhook_id)
        return Response(s.WebhookOut(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, webhook_id: int) -> Response:
        get_webhook_for_organization(self.organization_id, webhook_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTestView(ApiView):
    required_scope = "webhooks"

    @extend_schema(request=None, responses={200: s.WebhookDeliveryOut})
    def post(self, request: Request, webhook_id: int) -> Response:
        endpoint = get_webhook_for_organization(self.organization_id, webhook_id)
        return Response(s.WebhookDeliveryOut(send_test(endpoint)).data)


class WebhookDeliveriesView(ApiView):
    required_scope = "webhooks"

    @extend_schema(responses={200: s.WebhookDeliveryOut(many=True)})
    def get(self, request: Request, webhook_id: int) -> Response:
        endpoint = get_webhook_for_organization(self.organization_id, webhook_id)
        limit = int_param(request.query_params.get("limit"), "limit", 100, low=1, high=500)
        log = endpoint.deliveries.order_by("-id")[:limit]
        return Response({"items": s.WebhookDeliveryOut(log, many=True).data})
