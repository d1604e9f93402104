"""Who receives mail sent to an address: the RCPT TO check.

Answers are cached for ``MAILROOM_RECIPIENT_CACHE_SECONDS`` under a generation number that any
change to domains, mailboxes or aliases bumps (see ``mailcore.signals``). Two levels: Redis,
shared by every process, and a small dictionary in each process in front of it, whose copy of
the generation is re-read from Redis at most every ``LOCAL_GENERATION_SECONDS``. So an edit
applies to the next RCPT in the process that made it and within a second everywhere else, and a
busy receiver asks Redis once a second instead of twice per recipient. When Redis is down the
cache misses and the database answers.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q

from mailcore.models import Alias, Domain, Folder, Mailbox, MailboxGrant
from mailcore.services.outbound.verp import is_bounce_local_part

GENERATION_KEY = "rcpt:generation"
LOCAL_GENERATION_SECONDS = 1.0
LOCAL_CACHE_LIMIT = 10_000


class Verdict(enum.StrEnum):
    LOCAL = "local"
    UNKNOWN_USER = "unknown_user"
    FOREIGN_DOMAIN = "foreign_domain"
    BOUNCE = "bounce"  # bounces[+TOKEN]@<local domain>: outbound bounce intake (issue 4)


@dataclass(frozen=True, slots=True)
class Target:
    """One mailbox a message is stored in."""

    mailbox_id: int
    organization_id: int
    inbox_folder_id: int
    quota_bytes: int
    used_bytes: int
    user_ids: tuple[int, ...]  # the owner and users the mailbox is shared with

    def has_room_for(self, size: int) -> bool:
        return self.quota_bytes == 0 or self.used_bytes + size <= self.quota_bytes


@dataclass(frozen=True, slots=True)
class Resolution:
    verdict: Verdict
    targets: tuple[Target, ...] = ()


def normalize_address(address: str) -> str:
    address = address.strip().strip("<>").strip()
    local_part, sep, domain = address.rpartition("@")
    if not sep:
        return address.lower()
    return f"{local_part.lower()}@{domain.lower().rstrip('.')}"


class _LocalCache:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.generation: object = None
        self.generation_read_at = float("-inf")
        self.answers: dict[str, tuple[object, float, Resolution]] = {}

    def current_generation(self) -> object:
        now = time.monotonic()
        if now - self.generation_read_at > LOCAL_GENERATION_SECONDS:
            self.generation = read_generation()
            self.generation_read_at = now
        return self.generation


_local = _LocalCache()


def clear_local_cache() -> None:
    """Forget this process's copies (tests call it when they empty Redis)."""
    _local.clear()


def bump_generation() -> None:
    """Invalidate every cached answer (called when domains, mailboxes or aliases change)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no generation yet (or Redis was flushed): start a fresh one
        cache.set(GENERATION_KEY, time.time_ns(), timeout=None)
    _local.clear()


def read_generation() -> int | None:
    """The current generation; a missing one is created from the clock, never restarted at a
    small number, so answers cached before a Redis flush can never look current again.
    None when Redis is down (then nothing is cached)."""
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, time.time_ns(), timeout=None)
        generation = cache.get(GENERATION_KEY)
    return generation


def resolve_recipient(address: str) -> Resolution:
    address = normalize_address(address)
    generation = _local.current_generation()
    if generation is None:  # Redis is down: the database answers every time
        return _resolve_from_database(address)
    now = time.monotonic()
    local = _local.answers.get(address)
    if local is not None and local[0] == generation and local[1] > now:
        return local[2]
    key = f"rcpt:{generation}:{address}"
    resolution = cache.get(key)
    if resolution is None:
        resolution = _resolve_from_database(address)
        cache.set(key, resolution, timeout=settings.MAILROOM_RECIPIENT_CACHE_SECONDS)
    if len(_local.answers) >= LOCAL_CACHE_LIMIT:
        _local.answers.clear()
    _local.answers[address] = (
        generation,
        now + settings.MAILROOM_RECIPIENT_CACHE_SECONDS,
        resolution,
    )
    return resolution


def _resolve_from_database(address: str) -> Resolution:
    local_part, _, domain_name = address.rpartition("@")
    if not local_part or not domain_name:
        return Resolution(Verdict.UNKNOWN_USER)
    domain = Domain.objects.filter(name=domain_name, is_active=True).first()
    if domain is None:
        return Resolution(Verdict.FOREIGN_DOMAIN)
    if is_bounce_local_part(local_part):  # reserved for bounces of outbound mail
        return Resolution(Verdict.BOUNCE)
    mailboxes = list(Mailbox.objects.filter(address=address, is_active=True))
    if not mailboxes:
        # Plus addressing: alice+tag@ delivers to alice@ when there is no exact match.
        base = local_part.split("+", 1)[0]
        candidates = [local_part] + ([base] if base and base != local_part else [])
        aliases = list(
            Alias.objects.filter(domain=domain, is_active=True)
            .filter(Q(local_part__in=candidates) | Q(local_part=""))
            .prefetch_related("mailboxes")
        )
        aliases.sort(key=lambda alias: (alias.local_part == "", alias.local_part != local_part))
        if base != local_part:
            mailboxes = list(
                Mailbox.objects.filter(address=f"{base}@{domain_name}", is_active=True)
            )
        if not mailboxes and aliases:
            mailboxes = [mailbox for mailbox in aliases[0].mailboxes.all() if mailbox.is_active]
    if not mailboxes:
        return Resolution(Verdict.UNKNOWN_USER)
    return Resolution(Verdict.LOCAL, tuple(_targets(mailboxes)))


def _targets(mailboxes: list[Mailbox]) -> list[Target]:
    ids = sorted({mailbox.id for mailbox in mailboxes})
    inboxes = dict(
        Folder.objects.filter(mailbox_id__in=ids, role=Folder.Role.INBOX).values_list(
            "mailbox_id", "id"
        )
    )
    shared: dict[int, list[int]] = {}
    grants = MailboxGrant.objects.filter(mailbox_id__in=ids).values_list("mailbox_id", "user_id")
    for mailbox_id, user_id in grants:
        shared.setdefault(mailbox_id, []).append(user_id)
    by_id = {mailbox.id: mailbox for mailbox in mailboxes}
    return [
        Target(
            mailbox_id=mailbox_id,
            organization_id=by_id[mailbox_id].organization_id,
            inbox_folder_id=inboxes[mailbox_id],
            quota_bytes=by_id[mailbox_id].quota_bytes,
            used_bytes=by_id[mailbox_id].used_bytes,
            user_ids=(by_id[mailbox_id].user_id, *sorted(shared.get(mailbox_id, []))),
        )
        for mailbox_id in ids
        if mailbox_id in inboxes
    ]
