"""Template helpers of the webmail: dates, sizes, address lists."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def short_date(value: datetime | None) -> str:
    """Time today, "Nov 3" this year, the full date before."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    now = timezone.localtime()
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
    from webmail.pagination import encode_cursor

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
