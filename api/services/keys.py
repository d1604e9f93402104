"""Creating, finding and revoking API keys."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import ApiKey, Scope
from mailcore.models import Domain

KEY_PREFIX = "mr_"


class KeyError_(ValueError):
    """A key request that cannot be carried out."""


@dataclass(frozen=True, slots=True)
class NewKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(
    *,
    organization_id: int,
    scopes: Sequence[str] = tuple(Scope.values),
    domain: Domain | None = None,
    name: str = "",
    rate_per_second: int | None = None,
) -> NewKey:
    """A new key; the returned ``secret`` is the only time the full key exists."""
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise KeyError_(f"unknown scopes: {', '.join(unknown)}")
    if domain is not None and domain.organization_id != organization_id:
        raise KeyError_("the domain belongs to another organization")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(30)}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            organization_id=organization_id,
            domain=domain,
            name=name,
            prefix=prefix,
            key_hash=hash_key(secret),
            scopes=sorted(set(scopes)),
            rate_per_second=rate_per_second,
        )
    return NewKey(api_key, secret)


# hash -> (monotonic expiry, key): saves a query per request. A revoked key keeps working in
# other processes for at most MAILROOM_API_KEY_CACHE_SECONDS.
_cache: dict[str, tuple[float, ApiKey]] = {}


def find_api_key(secret: str) -> ApiKey | None:
    """The active key for ``secret`` (with its domain), or None."""
    if not secret or len(secret) > 200:
        return None
    digest = hash_key(secret)
    now = time.monotonic()
    cached = _cache.get(digest)
    if cached is not None and cached[0] > now:
        return cached[1]
    api_key = (
        ApiKey.objects.select_related("domain").filter(key_hash=digest, is_active=True).first()
    )
    if api_key is not None and settings.MAILROOM_API_KEY_CACHE_SECONDS > 0:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (now + settings.MAILROOM_API_KEY_CACHE_SECONDS, api_key)
    return api_key


def revoke_api_key(api_key: ApiKey) -> bool:
    """Revoke for good; False if it already was."""
    updated = ApiKey.objects.filter(pk=api_key.pk, is_active=True).update(
        is_active=False, revoked_at=timezone.now()
    )
    _cache.pop(api_key.key_hash, None)
    return updated == 1
