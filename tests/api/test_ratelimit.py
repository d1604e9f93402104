"""Token buckets per key and per tenant in Redis: 429 with Retry-After and X-RateLimit-*."""

from __future__ import annotations

import pytest

from api.services.keys import create_api_key
from mailcore.models import Mailbox, OutboundMessage
from tests.api.conftest import client_for, send_json

pytestmark = pytest.mark.django_db


def test_key_bucket(alice: Mailbox, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAILROOM_API_BURST_SECONDS = 2
    key = create_api_key(organization_id=alice.organization_id, rate_per_second=1).secret
    client = client_for(key)
    first = client.post("/api/v1/messages/", send_json(), format="json")
    second = client.post("/api/v1/messages/", send_json(), format="json")
    third = client.post("/api/v1/messages/", send_json(), format="json")
    assert (first.status_code, second.status_code, third.status_code) == (202, 202, 429)
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("2", "1")
    assert second["X-RateLimit-Remaining"] == "0"
    assert third["Retry-After"] == "1"
    assert third["X-RateLimit-Remaining"] == "0"
    assert third.json() == {"error": {"code": "throttled", "message": "Too many requests."}}
    assert OutboundMessage.objects.count() == 2
    mailgun = client.get("/v3/example.test/bounces")
    assert mailgun.status_code == 429
    assert mailgun.json() == {"message": "Too many requests."}
    # Another key of the same tenant has its own bucket.
    other = create_api_key(organization_id=alice.organization_id).secret
    assert client_for(other).get("/api/v1/domains/").status_code == 200


def test_tenant_bucket_is_shared_by_its_keys(alice: Mailbox, charlie: Mailbox, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAILROOM_API_TENANT_RATE = 1
    settings.MAILROOM_API_BURST_SECONDS = 3
    keys = [create_api_key(organization_id=alice.organization_id).secret for _ in range(4)]
    codes = [client_for(k).get("/api/v1/domains/").status_code for k in keys]
    assert codes == [200, 200, 200, 429]
    charlie_key = create_api_key(organization_id=charlie.organization_id).secret
    assert client_for(charlie_key).get("/api/v1/domains/").status_code == 200
