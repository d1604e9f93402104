"""Open pixel, click redirect and one-click unsubscribe: signed links and what a hit records.

A link carries a token made with ``django.core.signing`` (HMAC-SHA256 with SECRET_KEY and a salt
per kind), holding ``[organization id, delivery id, outbound message id]`` and, for clicks, the
target URL. A token for one kind is refused for another, a token whose bytes were altered fails
its signature, and the click target can only be a URL that was in the signed message, so the
redirect can never be used as an open redirect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html import escape, unescape
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse

from analytics.machine import machine_reason
from analytics.services.batch import submit_event
from analytics.services.events import EventInput, record_events

KINDS = ("open", "click", "unsubscribe")
HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.I)
BODY_END = re.compile(r"</body\s*>", re.I)
PIXEL = (
    '<img src="{src}" width="1" height="1" alt="" '
    'style="display:block;border:0;width:1px;height:1px" />'
)


class InvalidToken(Exception):
    """The token is forged, altered or of another kind."""


@dataclass(frozen=True, slots=True)
class Target:
    organization_id: int
    delivery_id: int | None
    message_id: int | None
    url: str = ""


def make_token(kind: str, target: Target) -> str:
    value: list[Any] = [target.organization_id, target.delivery_id, target.message_id]
    if kind == "click":
        value.append(target.url)
    return signing.dumps(value, salt=f"{settings.MAILROOM_TRACKING_SALT}.{kind}", compress=True)


def read_token(kind: str, token: str) -> Target:
    try:
        value = signing.loads(token, salt=f"{settings.MAILROOM_TRACKING_SALT}.{kind}")
        organization_id, delivery_id, message_id = (value[0], value[1], value[2])
        url = str(value[3]) if kind == "click" else ""
    except (signing.BadSignature, TypeError, IndexError, ValueError) as exc:
        raise InvalidToken(kind) from exc
    if kind == "click" and not is_safe_target(url):
        raise InvalidToken(kind)
    return Target(int(organization_id), delivery_id, message_id, url)


def is_safe_target(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def tracking_url(kind: str, target: Target) -> str:
    name = {"open": "analytics:open", "click": "analytics:click", "unsubscribe": "analytics:unsub"}
    path = reverse(name[kind], kwargs={"token": make_token(kind, target)})
    return settings.MAILROOM_TRACKING_BASE_URL.rstrip("/") + path


# --- Instrumenting an outgoing message ----------------------------------------------------------


def instrument_message(
    raw: bytes,
    *,
    organization_id: int,
    delivery_id: int | None = None,
    message_id: int | None = None,
    track_opens: bool = True,
    track_clicks: bool = True,
    add_unsubscribe: bool = True,
) -> bytes:
    """Rewrite http(s) links of the HTML parts through the click redirect, add the open pixel
    and (when a delivery is known) RFC 8058 List-Unsubscribe headers. Call before DKIM signing.

    Plain-text parts are left alone. A message without HTML gets headers only. Returns ``raw``
    unchanged when there is nothing to do.
    """
    with_unsubscribe = add_unsubscribe and delivery_id is not None
    if not (track_opens or track_clicks or with_unsubscribe):
        return raw
    message = BytesParser(policy=policy.SMTP).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    base = Target(organization_id, delivery_id, message_id)
    changed = False
    pixel_added = False
    for part in message.walk():
        if part.get_content_type() != "text/html" or part.is_attachment():
            continue
        html = part.get_content()
        if track_clicks:
            html = HREF.sub(lambda m: _rewrite_link(m, base), html)
        if track_opens and not pixel_added:
            pixel = PIXEL.format(src=escape(tracking_url("open", base)))
            html, found = BODY_END.subn(pixel.replace("\\", "\\\\") + r"\g<0>", html, count=1)
            html = html if found else html + pixel
            pixel_added = True
        part.set_content(html, subtype="html", charset="utf-8", cte="quoted-printable")
        changed = True
    if with_unsubscribe and "List-Unsubscribe" not in message:
        message["List-Unsubscribe"] = f"<{tracking_url('unsubscribe', base)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        changed = True
    return message.as_bytes(policy=policy.SMTP) if changed else raw


def _rewrite_link(match: re.Match[str], base: Target) -> str:
    url = unescape(match.group(3))
    if not is_safe_target(url):
        return match.group(0)
    target = Target(base.organization_id, base.delivery_id, base.message_id, url)
    quote = match.group(2)
    return f"{match.group(1)}{quote}{escape(tracking_url('click', target))}{quote}"


# --- Recording hits -----------------------------------------------------------------------------


def _delivery_facts(delivery_id: int | None) -> dict[str, Any]:
    """Recipient, tags and sending domain of a delivery (cached: every open would ask)."""
    if delivery_id is None:
        return {}
    key = f"track:delivery:{delivery_id}"
    facts = cache.get(key)
    if facts is None:
        from mailcore.models import Delivery

        row = (
            Delivery.objects.filter(id=delivery_id)
            .values("recipient", "message__tags", "message__domain__name", "message__domain_id")
            .first()
        )
        facts = (
            {
                "recipient": row["recipient"],
                "tags": row["message__tags"],
                "domain": row["message__domain__name"],
                "domain_id": row["message__domain_id"],
            }
            if row
            else {}
        )
        cache.set(key, facts, 3600)
    return facts


def _event(kind: str, target: Target, user_agent: str, ip: str, **extra: Any) -> EventInput:
    facts = _delivery_facts(target.delivery_id)
    reason = machine_reason(user_agent, ip, settings.MAILROOM_TRACKING_MACHINE_CIDRS)
    payload: dict[str, Any] = {
        "delivery_id": target.delivery_id,
        "domain": facts.get("domain", ""),
        "user_agent": user_agent[:300],
        "ip": ip,
        "machine": bool(reason),
        **({"machine_reason": reason} if reason else {}),
        **extra,
    }
    return EventInput(
        organization_id=target.organization_id,
        type=kind,
        message_id=target.message_id,
        recipient=facts.get("recipient", ""),
        tags=facts.get("tags", []),
        payload=payload,
    )


def record_open(token: str, *, user_agent: str, ip: str) -> None:
    """One 'opened' event per pixel request (batched). Raises InvalidToken."""
    submit_event(_event("opened", read_token("open", token), user_agent, ip))


def record_click(token: str, *, user_agent: str, ip: str) -> str:
    """One 'clicked' event (batched); returns the signed target URL. Raises InvalidToken."""
    target = read_token("click", token)
    submit_event(_event("clicked", target, user_agent, ip, url=target.url[:2000]))
    return target.url


def unsubscribe(token: str, *, user_agent: str, ip: str, one_click: bool) -> bool:
    """Suppress the delivery's recipient for its sending domain and record 'unsubscribed'.

    Returns whether a new suppression was added. Raises InvalidToken.
    """
    from mailcore.services.outbound.suppression import NewSuppression, add_suppressions

    target = read_token("unsubscribe", token)
    facts = _delivery_facts(target.delivery_id)
    if not facts:
        raise InvalidToken("unsubscribe")
    with transaction.atomic():
        added = add_suppressions(
            [
                NewSuppression(
                    organization_id=target.organization_id,
                    domain_id=facts["domain_id"],
                    address=facts["recipient"],
                    reason="unsubscribe",
                    source="link",
                    detail="RFC 8058 one-click" if one_click else "unsubscribe page",
                    delivery_id=target.delivery_id,
                )
            ]
        )
        if added:
            record_events([_event("unsubscribed", target, user_agent, ip, one_click=one_click)])
    return bool(added)
