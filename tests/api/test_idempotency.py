"""Idempotency-Key on /api/v1 and /v3 sends: replay, 422 on another request, 409 while running,
per-tenant keys, expiry, take-over after a crash, refused requests and partial batches."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from api.models import IdempotencyKey
from api.services import idempotency
from api.tasks import purge_idempotency_keys
from mailcore.models import Delivery, Mailbox, OutboundMessage
from tests.api.conftest import Keys, client_for, send_json

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Endpoint:
    """How to post a send to one endpoint, with a body that differs by ``variant``."""

    name: str
    path: str
    status: int
    post: Callable[[Any, str, int], Any]


def _native(client: Any, key: str, variant: int) -> Any:
    attachment = {
        "filename": "a.txt",
        "content_type": "text/plain",
        "content": base64.b64encode(f"report {variant}".encode()).decode(),
    }
    body = send_json(attachments=[attachment])
    return client.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _mailgun(client: Any, key: str, variant: int) -> Any:
    data = {
        "from": "alice@example.test",
        "to": ["one@remote.test", "two@remote.test"],
        "subject": "Hello",
        "text": "Hi",
        "o:tag": ["a", "b"],
        "attachment": SimpleUploadedFile("a.txt", f"report {variant}".encode(), "text/plain"),
    }
    return client.post("/v3/example.test/messages", data, HTTP_IDEMPOTENCY_KEY=key)


ENDPOINTS = [
    Endpoint("native", "/api/v1/messages/", 202, _native),
    Endpoint("mailgun", "/v3/example.test/messages", 200, _mailgun),
]
by_endpoint = pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)


def _client(endpoint: Endpoint, keys: Keys) -> Any:
    """Alice's full key, as HTTP Basic on /v3 (Mailgun's form) and Bearer on /api/v1."""
    return client_for(keys.full, basic=endpoint.name == "mailgun")


def _error_message(endpoint: Endpoint, response: Any) -> str:
    body = response.json()
    return body["message"] if endpoint.name == "mailgun" else body["error"]["message"]


@by_endpoint
def test_same_key_same_request_replays_the_first_response(
    endpoint: Endpoint, keys: Keys, alice: Mailbox
) -> None:
    client = _client(endpoint, keys)
    first = endpoint.post(client, "order-1", 1)
    again = endpoint.post(client, "order-1", 1)
    assert first.status_code == again.status_code == endpoint.status, first.content
    assert again.json() == first.json()
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert OutboundMessage.objects.count() == 1
    record = IdempotencyKey.objects.get()
    assert (record.key, record.state, record.response_status) == (
        "order-1",
        "completed",
        endpoint.status,
    )
    assert record.path == endpoint.path
    # A structured-field string names the same key as the bare token.
    quoted = endpoint.post(client, '"order-1"', 1)
    assert quoted.json() == first.json()
    assert OutboundMessage.objects.count() == 1


@by_endpoint
def test_same_key_different_request_is_refused_with_422(
    endpoint: Endpoint, keys: Keys, alice: Mailbox
) -> None:
    client = _client(endpoint, keys)
    first = endpoint.post(client, "order-2", 1)
    assert first.status_code == endpoint.status
    other = endpoint.post(client, "order-2", 2)  # only the attachment's bytes differ
    assert other.status_code == 422
    assert "different request" in _error_message(endpoint, other)
    if endpoint.name == "native":
        assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert OutboundMessage.objects.count() == 1
    # The original is still answered for the original request.
    assert endpoint.post(client, "order-2", 1).json() == first.json()


@by_endpoint
def test_keys_are_per_tenant(endpoint: Endpoint, keys: Keys, alice: Mailbox) -> None:
    client = _client(endpoint, keys)
    mine = endpoint.post(client, "shared-key", 1)
    assert mine.status_code == endpoint.status
    theirs = client_for(keys.other).post(
        "/api/v1/messages/",
        send_json(**{"from": "charlie@other.test"}),
        format="json",
        HTTP_IDEMPOTENCY_KEY="shared-key",
    )
    assert theirs.status_code == 202, theirs.content
    assert "Idempotent-Replayed" not in theirs
    assert OutboundMessage.objects.count() == 2
    assert IdempotencyKey.objects.filter(key="shared-key").count() == 2


@by_endpoint
def test_an_expired_key_may_be_used_for_a_new_request(
    endpoint: Endpoint, keys: Keys, alice: Mailbox
) -> None:
    client = _client(endpoint, keys)
    first = endpoint.post(client, "old-key", 1)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    later = endpoint.post(client, "old-key", 2)
    assert later.status_code == endpoint.status
    assert later.json() != first.json()
    assert OutboundMessage.objects.count() == 2
    assert IdempotencyKey.objects.get().fingerprint != ""
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert purge_idempotency_keys() == 1
    assert not IdempotencyKey.objects.exists()


@by_endpoint
@pytest.mark.django_db(transaction=True)
def test_a_repeat_while_the_first_runs_gets_409(
    endpoint: Endpoint, keys: Keys, alice: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two real concurrent requests: the first is held inside its send."""
    from api.views import mailgun, native

    entered, release = threading.Event(), threading.Event()
    module = native if endpoint.name == "native" else mailgun
    real_send = module.send_draft

    def slow_send(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return real_send(*args, **kwargs)

    monkeypatch.setattr(module, "send_draft", slow_send)
    results: list[Any] = []

    def first_request() -> None:
        try:
            client = _client(endpoint, keys)
            results.append(endpoint.post(client, "busy", 1))
        finally:
            connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    try:
        assert entered.wait(10)
        client = _client(endpoint, keys)
        during = endpoint.post(client, "busy", 1)
        assert during.status_code == 409
        assert "still being processed" in _error_message(endpoint, during)
        # A different request under the running key is still a misuse of the key.
        assert endpoint.post(client, "busy", 2).status_code == 422
    finally:
        release.set()
        thread.join(10)
    assert results[0].status_code == endpoint.status
    after = endpoint.post(client, "busy", 1)
    assert after.json() == results[0].json()
    assert OutboundMessage.objects.count() == 1


def test_a_crash_after_commit_is_resumed_without_a_second_message(
    keys: Keys, alice: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("process died before storing the response")

    monkeypatch.setattr(idempotency, "complete_idempotency_key", die)
    client = client_for(keys.full)
    with pytest.raises(RuntimeError):
        _native(client, "crash", 1)
    stored = OutboundMessage.objects.get()
    record = IdempotencyKey.objects.get()
    assert record.state == "in_progress"
    assert record.locked_until > timezone.now()  # the dead request's lease still holds
    monkeypatch.undo()
    assert _native(client, "crash", 1).status_code == 409
    IdempotencyKey.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    retry = _native(client, "crash", 1)
    assert retry.status_code == 202
    assert retry.json()["id"] == stored.id
    assert OutboundMessage.objects.count() == 1
    assert IdempotencyKey.objects.get().state == "completed"


def test_a_held_lease_blocks_and_a_lapsed_one_is_taken_over(keys: Keys, alice: Mailbox) -> None:
    client = client_for(keys.full)
    claim = idempotency.claim_idempotency_key(
        organization_id=alice.organization_id,
        key="held",
        fingerprint=idempotency.request_fingerprint(
            "POST", "/api/v1/messages/", {"from": "x", "to": ["y"]}
        ),
        method="POST",
        path="/api/v1/messages/",
    )
    assert isinstance(claim, idempotency.Claim)
    body = {"from": "x", "to": ["y"]}
    response = client.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="held")
    assert response.status_code == 409
    IdempotencyKey.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    # Taken over; the request is invalid (no subject/text) so nothing is stored and the
    # key is freed for a corrected request.
    response = client.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="held")
    assert response.status_code == 400
    assert not IdempotencyKey.objects.exists()
    fixed = client.post(
        "/api/v1/messages/", send_json(), format="json", HTTP_IDEMPOTENCY_KEY="held"
    )
    assert fixed.status_code == 202
    assert OutboundMessage.objects.count() == 1


@by_endpoint
def test_a_refused_request_frees_its_key(endpoint: Endpoint, keys: Keys, alice: Mailbox) -> None:
    client = _client(endpoint, keys)
    if endpoint.name == "native":
        bad = client.post(
            "/api/v1/messages/",
            send_json(to=["not an address"]),
            format="json",
            HTTP_IDEMPOTENCY_KEY="fix-me",
        )
    else:
        bad = client.post(
            "/v3/example.test/messages",
            {"from": "alice@example.test", "text": "no recipient"},
            HTTP_IDEMPOTENCY_KEY="fix-me",
        )
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()
    fixed = endpoint.post(client, "fix-me", 1)
    assert fixed.status_code == endpoint.status
    assert OutboundMessage.objects.count() == 1


def test_a_partly_stored_batch_keeps_its_key_for_the_same_request_only(
    keys: Keys, alice: Mailbox
) -> None:
    client = client_for(keys.full, basic=True)
    data = {
        "from": "alice@example.test",
        "to": ["a@remote.test", "b@remote.test"],
        "subject": "Hi %recipient.name%",
        "text": "Hello",
        "recipient-variables": '{"a@remote.test": {"name": "A"}, "b@remote.test": "oops"}',
    }
    first = client.post("/v3/example.test/messages", data, HTTP_IDEMPOTENCY_KEY="batch")
    assert first.status_code == 400
    assert OutboundMessage.objects.count() == 1  # the first recipient's message
    assert IdempotencyKey.objects.get().state == "in_progress"
    changed = {**data, "recipient-variables": '{"a@remote.test": {"name": "A"}}'}
    assert (
        client.post("/v3/example.test/messages", changed, HTTP_IDEMPOTENCY_KEY="batch").status_code
        == 422
    )
    again = client.post("/v3/example.test/messages", data, HTTP_IDEMPOTENCY_KEY="batch")
    assert again.status_code == 400
    assert OutboundMessage.objects.count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize("header", ["", "   ", "x" * 201, "caf\u00e9"])
def test_unusable_keys_are_refused(keys: Keys, alice: Mailbox, header: str) -> None:
    response = client_for(keys.full).post(
        "/api/v1/messages/", send_json(), format="json", HTTP_IDEMPOTENCY_KEY=header
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert not OutboundMessage.objects.exists()


def test_fingerprint_is_canonical() -> None:
    fingerprint = idempotency.request_fingerprint
    assert fingerprint("POST", "/p", {"a": 1, "b": [1, 2]}) == fingerprint(
        "post", "/p", {"b": [1, 2], "a": 1}
    )
    assert fingerprint("POST", "/p", {"b": [1, 2]}) != fingerprint("POST", "/p", {"b": [2, 1]})
    assert fingerprint("POST", "/p", {"a": 1}) != fingerprint("POST", "/q", {"a": 1})
