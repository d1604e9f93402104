"""``Idempotency-Key`` on the send endpoints (IETF draft-ietf-httpapi-idempotency-key-header).

A key is stored per organization with the fingerprint of the first request (SHA-256 over the
method, the path and the canonical body: JSON sorted by key, form fields in order, uploaded
files by name, type and SHA-256 of their bytes), so a multipart retry with a new boundary or a
JSON body with reordered keys is still the same request.

- same key, same fingerprint, finished: the stored response (status and body) again;
- same key, different fingerprint: :class:`IdempotencyError` 422;
- same key while the first request still runs: :class:`IdempotencyError` 409.

The request that runs a key holds a lease (``MAILROOM_API_IDEMPOTENCY_LEASE_SECONDS``); if its
process dies, a retry after the lease takes the key over and re-runs the send, which the
outbox deduplicates through :attr:`Claim.outbound_key` (unique per organization on the
outbound message), so the message is still stored once. Keys expire after
``MAILROOM_API_IDEMPOTENCY_TTL_SECONDS``; then the key is free for a new request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from api.models import IdempotencyKey
from mailcore.models import OutboundMessage

MAX_KEY_LENGTH = 200


class IdempotencyError(Exception):
    """The request cannot run under this key; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Claim:
    """This request runs the key."""

    record_id: int

    @property
    def outbound_key(self) -> str:
        """The key the outbox stores on the message (``#index`` is added per batch message)."""
        return f"api:{self.record_id}"


@dataclass(frozen=True, slots=True)
class Replay:
    """The key finished before: answer this again."""

    status: int
    body: Any


def parse_key(header: str) -> str:
    """The key from the header: an RFC 8941 string (``"abc"``) or, as most clients send it,
    a bare token. Raises :class:`IdempotencyError` (400) for an empty, overlong or
    non-printable key."""
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not value:
        raise IdempotencyError("The Idempotency-Key header is empty.", status=400, code="invalid")
    if len(value) > MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise IdempotencyError(
            f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            status=400,
            code="invalid",
        )
    return value


def _canonical(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return {"file": value.name, "type": value.content_type, "sha256": digest.hexdigest()}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def request_fingerprint(method: str, path: str, data: Any) -> str:
    """SHA-256 (hex) of the canonical request. ``data`` is DRF's ``request.data``: a dict
    (JSON) or a QueryDict (form fields and files, repeated fields in their order)."""
    if hasattr(data, "getlist"):
        body: Any = {key: _canonical(data.getlist(key)) for key in data}
    else:
        body = _canonical(data)
    document = json.dumps(
        {"method": method.upper(), "path": path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


_CLAIM_SQL = """
INSERT INTO api_idempotencykey (organization_id, key, fingerprint, method, path, state,
    locked_until, created_at, expires_at)
VALUES (%s, %s, %s, %s, %s, 'in_progress', %s, %s, %s)
ON CONFLICT (organization_id, key) DO NOTHING
RETURNING id
"""


def claim_idempotency_key(
    *, organization_id: int, key: str, fingerprint: str, method: str, path: str
) -> Claim | Replay:
    """Run the key (:class:`Claim`) or answer from it (:class:`Replay`); raises
    :class:`IdempotencyError` 409/422. Call outside any transaction: the claim must be
    visible to concurrent requests as soon as it is made (each statement commits)."""
    for _ in range(3):
        now = timezone.now()
        lease_end = now + timedelta(seconds=settings.MAILROOM_API_IDEMPOTENCY_LEASE_SECONDS)
        IdempotencyKey.objects.filter(
            organization_id=organization_id, key=key, expires_at__lte=now
        ).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL,
                [
                    organization_id,
                    key,
                    fingerprint,
                    method.upper(),
                    path[:500],
                    lease_end,
                    now,
                    now + timedelta(seconds=settings.MAILROOM_API_IDEMPOTENCY_TTL_SECONDS),
                ],
            )
            row = cursor.fetchone()
        if row is not None:
            return Claim(row[0])
        record = IdempotencyKey.objects.filter(organization_id=organization_id, key=key).first()
        if record is None:
            continue  # released or expired between the two statements: try again
        if record.fingerprint != fingerprint:
            raise IdempotencyError(
                "This Idempotency-Key was already used with a different request "
                f"({record.method} {record.path} with another body). Use a new key for a "
                "new request.",
                status=422,
                code="idempotency_key_reused",
            )
        if record.state == IdempotencyKey.State.COMPLETED:
            return Replay(record.response_status or 200, record.response_body)
        taken_over = IdempotencyKey.objects.filter(
            pk=record.pk, state=IdempotencyKey.State.IN_PROGRESS, locked_until__lte=now
        ).update(locked_until=lease_end)
        if taken_over:
            return Claim(record.pk)
        raise IdempotencyError(
            "A request with this Idempotency-Key is still being processed; retry later.",
            status=409,
            code="idempotency_key_in_use",
        )
    raise IdempotencyError(
        "This Idempotency-Key is changing under concurrent requests; retry later.",
        status=409,
        code="idempotency_key_in_use",
    )


def complete_idempotency_key(claim: Claim, status: int, body: Any) -> None:
    """Store the response of a request that succeeded; repeats get it from now on."""
    IdempotencyKey.objects.filter(pk=claim.record_id).update(
        state=IdempotencyKey.State.COMPLETED,
        response_status=status,
        response_body=body,
        locked_until=timezone.now(),
    )


def abandon_idempotency_key(claim: Claim, organization_id: int) -> None:
    """The request failed. If it stored nothing, the key is freed (a corrected request may
    use it). If it stored part of its work (a batch refused at its third recipient), the key
    keeps its fingerprint and its lease ends, so only the same request may resume it."""
    prefix = claim.outbound_key
    stored = OutboundMessage.objects.filter(
        Q(idempotency_key=prefix) | Q(idempotency_key__startswith=f"{prefix}#"),
        organization_id=organization_id,
    ).exists()
    records = IdempotencyKey.objects.filter(
        pk=claim.record_id, state=IdempotencyKey.State.IN_PROGRESS
    )
    if stored:
        records.update(locked_until=timezone.now())
    else:
        records.delete()


def purge_expired_idempotency_keys() -> int:
    """Delete expired keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
