"""The door to the API's own tenant objects (uniform 404)."""

from __future__ import annotations

from django.http import Http404

from api.models import WebhookEndpoint


def get_webhook_for_organization(organization_id: int, webhook_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(
        organization_id=organization_id, id=webhook_id
    ).first()
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint
