"""Template helpers of the webmail: dates, sizes, address lists."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, tzinfo
from html import escape as _escape
from pathlib import Path
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from webmail.pagination import encode_cursor
from webmail.sidebar import url_pattern

register = template.Library()


@register.filter
def short_date(value: datetime | None) -> str:
    """Time today, "Nov 3" this year, the full date before."""
    if value is None:
        return ""
    return _short_date(timezone.localtime(value), timezone.localtime())


def _short_date(local: datetime, now: datetime) -> str:
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return f"{local.strftime('%b')} {local.day}"
    return local.strftime("%Y-%m-%d")


@register.filter
def long_date(value: datetime | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%a, %d %b %Y %H:%M")


@register.filter
def file_size(value: int | None) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@register.filter
def addresses(pairs: list[list[str]] | None) -> str:
    """[[name, address], ...] as "Name <address>, other@x"."""
    return ", ".join(f"{n} <{a}>" if n else a for n, a in (pairs or []))


@register.filter
def names(pairs: list[list[str]] | None) -> str:
    """[[name, address], ...] as short names for a list row."""
    return ", ".join(n or a for n, a in (pairs or []))


@register.filter
def cursor(message: object) -> str:
    return encode_cursor(message)  # type: ignore[arg-type]


# Inline SVG icons, so no font or emoji is needed; the path data lives in icons.svg.
_ICONS = dict(
    re.findall(
        r'<symbol id="(\w+)">(.*?)</symbol>',
        (Path(__file__).with_name("icons.svg")).read_text(encoding="utf-8"),
    )
)


@register.simple_tag
def icon(name: str, label: str = "") -> str:
    from django.utils.html import escape
    from django.utils.safestring import mark_safe

    paths = _ICONS.get(name, _ICONS["folder"])
    aria = f'role="img" aria-label="{escape(label)}"' if label else 'aria-hidden="true"'
    return mark_safe(  # noqa: S308 - constant markup, the label is escaped
        f'<svg class="icon" viewBox="0 0 24 24" {aria} fill="none" stroke="currentColor" '
        f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{paths}</svg>'
    )


# --- Message list rows -------------------------------------------------------------------------
# A list page has 50 rows; rendered through the template language they were most of its time
# (two ``{% url %}`` and ~140 variable lookups a row, docs/benchmarks.md). This builds the markup
# in Python: every value from a message is escaped with ``html.escape`` (what Django's
# autoescape does), the links come from one reversed prefix per page.


def _labels_of(message: Any) -> Iterable[Any]:
    labels = getattr(message, "list_labels", None)  # prefetched by views.mailbox.list_queryset
    return message.labels.all() if labels is None else labels


def _row_html(
    m: Any, *, role: str, message_url: tuple[str, str], compose_url: str, tz: tzinfo, now: datetime
) -> str:
    mid = str(m.id)
    href = f"{compose_url}?draft={mid}" if m.is_draft else f"{message_url[0]}{mid}{message_url[1]}"
    href = _escape(href)
    if m.is_draft:
        who = f'<span class="draft-mark">Draft</span> {_escape(names(m.to_addresses))}'
    elif role == "sent":
        who = f"To: {_escape(names(m.to_addresses))}"
    else:
        who = _escape(str(m.from_name or m.from_address))
    if m.is_answered:
        who += ' <span class="answered" title="Answered">↩</span>'
    chips = "".join(
        f'<span class="chip" data-color="{_escape(str(label.color))}">'
        f"{_escape(str(label.name))}</span> "
        for label in _labels_of(m)
    )
    local = m.received_at.astimezone(tz)
    clip = (
        f'<span class="clip" title="Has attachments">{icon("clip", "Has attachments")}</span>'
        if m.has_attachments
        else ""
    )
    flagged = m.is_flagged
    return (
        f'\n<tr class="row{"" if m.is_seen else " unread"}{" flagged" if flagged else ""}"'
        f' data-id="{mid}" data-cursor="{encode_cursor(m)}" data-href="{href}">\n'
        f'  <td class="select"><input type="checkbox" name="ids" value="{mid}"'
        ' aria-label="Select message"></td>\n'
        f'  <td class="star"><button type="button" class="star-button" data-star="{mid}"'
        f' aria-pressed="{"true" if flagged else "false"}" aria-label="Star">'
        f"{'★' if flagged else '☆'}</button></td>\n"
        f'  <td class="from">{who}</td>\n'
        f'  <td class="subject"><a href="{href}" class="open-link">{chips}'
        f'<span class="subject-text">{_escape(str(m.subject or "(no subject)"))}</span>'
        f' <span class="snippet">{_escape(str(m.snippet))}</span></a></td>\n'
        f'  <td class="meta">{clip}<time datetime="{local.isoformat()}"'
        f' title="{local.strftime("%a, %d %b %Y %H:%M")}">{_short_date(local, now)}</time></td>\n'
        "</tr>"
    )


@register.simple_tag
def message_rows(messages: Iterable[Any], folder: Any = None) -> SafeString:
    """The ``<tr>`` of every message of a list (``webmail/_rows.html``)."""
    tz = timezone.get_current_timezone()
    options = {
        "role": getattr(folder, "role", "") or "",
        "message_url": url_pattern("webmail:message"),
        "compose_url": reverse("webmail:compose"),
        "tz": tz,
        "now": timezone.now().astimezone(tz),
    }
    return mark_safe(  # noqa: S308 - every value from a message is escaped in _row_html
        "".join(_row_html(m, **options) for m in messages)
    )
