"""Where mail for a domain goes: the relay host if one is configured, else its MX hosts.

MX lookup uses dnspython's async resolver: hosts by preference (equal preferences shuffled),
the domain itself when it has no MX (RFC 5321 implicit MX), a permanent failure for a null MX
(RFC 7505) or a domain that does not exist, a temporary one when DNS does not answer. Answers
are cached in the process for their TTL (between one minute and one hour).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
from django.conf import settings


class RouteError(Exception):
    def __init__(self, message: str, *, is_permanent: bool, enhanced_status: str) -> None:
        super().__init__(message)
        self.is_permanent = is_permanent
        self.enhanced_status = enhanced_status


@dataclass(frozen=True, slots=True)
class Route:
    key: str  # what lanes, connection slots and rate counters are keyed by
    kind: str  # "relay" | "mx" | "local"
    domain: str


def relay_address() -> tuple[str, int] | None:
    value = settings.MAILROOM_RELAY_HOST.strip()
    if not value:
        return None
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "25")
    return host.strip("[]"), int(port or 25)


def route_for(domain: str, *, is_local: bool) -> Route:
    if is_local:
        return Route("local", "local", domain)
    relay = relay_address()
    if relay is not None:
        return Route(f"relay:{relay[0]}:{relay[1]}", "relay", domain)
    return Route(f"mx:{domain}", "mx", domain)


_cache: dict[str, tuple[float, list[str]]] = {}


async def resolve_hosts(route: Route) -> list[tuple[str, int]]:
    """The (host, port) pairs to try in order."""
    if route.kind == "relay":
        relay = relay_address()
        assert relay is not None
        return [relay]
    now = time.monotonic()
    cached = _cache.get(route.domain)
    if cached is None or cached[0] < now:
        hosts, ttl = await _lookup(route.domain)
        cached = (now + min(max(ttl, 60), 3600), hosts)
        _cache[route.domain] = cached
    return [(host, 25) for host in cached[1]]


async def _lookup(domain: str) -> tuple[list[str], int]:
    resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = 20
    try:
        answer = await resolver.resolve(domain, "MX")
    except dns.resolver.NXDOMAIN as exc:
        raise RouteError(
            f"Host or domain name not found: {domain}", is_permanent=True, enhanced_status="5.1.2"
        ) from exc
    except dns.resolver.NoAnswer:
        return [domain], 300
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise RouteError(
            f"DNS lookup for {domain} failed: {exc}", is_permanent=False, enhanced_status="4.4.3"
        ) from exc
    records = sorted(answer, key=lambda r: (r.preference, random.random()))  # noqa: S311
    hosts = [str(r.exchange).rstrip(".") for r in records]
    if hosts in ([""], ["."]) or (len(records) == 1 and str(records[0].exchange) == "."):
        raise RouteError(
            f"Domain {domain} does not accept mail (null MX)",
            is_permanent=True,
            enhanced_status="5.1.10",
        )
    return [host for host in hosts if host], int(answer.rrset.ttl if answer.rrset else 300)
