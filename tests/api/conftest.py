from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from api.models import Scope
from api.services.keys import create_api_key
from mailcore.models import Mailbox


@dataclass
class Keys:
    full: str  # alice's organization, every scope
    none: str  # alice's organization, no scope at all
    other: str  # charlie's organization, every scope


@pytest.fixture
def keys(alice: Mailbox, charlie: Mailbox) -> Keys:
    return Keys(
        full=create_api_key(organization_id=alice.organization_id).secret,
        none=create_api_key(organization_id=alice.organization_id, scopes=[]).secret,
        other=create_api_key(organization_id=charlie.organization_id).secret,
    )


def client_for(key: str | None, *, basic: bool = False) -> APIClient:
    client = APIClient()
    if key is not None:
        if basic:
            token = base64.b64encode(f"api:{key}".encode()).decode()
            client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
        else:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def send_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": "Alice <alice@example.test>",
        "to": ["dest@remote.test"],
        "subject": "Hello",
        "text": "Hi there",
    }
    body.update(overrides)
    return body


__all__ = ["Keys", "Scope", "client_for", "send_json"]


@pytest.fixture(autouse=True)
def _webhooks_without_settle_time(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MAILROOM_API_WEBHOOK_SETTLE_SECONDS = 0


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> None:
    from api.services import keys as key_service

    key_service._cache.clear()
