"""Structured header values: addresses, dates, message ids, subjects for threading."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from mailcore.mime.charsets import decode_header, fix_8bit
from mailcore.mime.structures import Address

MAX_ID_LENGTH = 255
MAX_REFERENCES = 50
# getaddresses walks its input a character at a time in Python; bound the work.
MAX_ADDRESS_HEADER = 64 * 1024


def _unfold(value: str) -> str:
    if "\n" in value or "\r" in value:
        value = value.replace("\r", "").replace("\n", "")
    return value


def _make_address(name: str, address: str, defects: list[str]) -> Address | None:
    address = address.strip().replace("\x00", "")
    if not address:
        return None
    if not address.isascii():
        address = fix_8bit(address, defects)
    local, at, domain = address.rpartition("@")
    if at:
        address = f"{local}@{domain.lower()}"
    name = " ".join(decode_header(name, defects).split()) if name else ""
    return Address(name, address)


_SPECIALS = r'\s"<>(),;:\\\[\]'
# One list member in the common shapes: `"Name" <a@b>`, `Name <a@b>`, `a@b`, or nothing.
# Possessive quantifiers keep a long odd header linear.
_SIMPLE_MEMBER = re.compile(
    rf"""\s*+(?:(?:"([^"\\]*+)"\s*+|([^"<>(),;:\\\[\]@]*+))<([^{_SPECIALS}]*+)>"""
    rf"|([^{_SPECIALS}@]++@[^{_SPECIALS}@]++)|)\s*+(?:,|\Z)"
)
# Any member, up to its top-level comma: quoted strings, comments and <...> kept whole.
_ANY_MEMBER = re.compile(
    r"""(?:"(?:[^"\\]|\\.)*"?|\((?:[^()\\]|\\.)*\)?|<[^<>]*>?|[^,"(<])*(?:,|\Z)""", re.DOTALL
)


def _address_pairs(value: str) -> list[tuple[str, str]]:
    """getaddresses(), but the common member shapes by regex (several times faster) and the
    rest one member at a time, so one odd member costs only itself."""
    pairs: list[tuple[str, str]] = []
    position, length = 0, len(value)
    while position < length:
        match = _SIMPLE_MEMBER.match(value, position)
        if match is not None:
            quoted, plain, angle, bare = match.groups()
            if angle is not None:
                pairs.append((plain if quoted is None else quoted, angle))
            elif bare is not None:
                pairs.append(("", bare))
            position = match.end()
            continue
        end = _ANY_MEMBER.match(value, position).end()  # type: ignore[union-attr]
        member = value[position : end - 1] if value.endswith(",", 0, end) else value[position:end]
        pairs.extend(getaddresses([member]))
        position = max(end, position + 1)
    return pairs


def parse_addresses(value: str, defects: list[str]) -> list[Address]:
    """All addresses of an address-list header, display names decoded."""
    value = _unfold(value)
    if len(value) > MAX_ADDRESS_HEADER:
        defects.append("long-header")
        cut = value.rfind(",", 0, MAX_ADDRESS_HEADER)
        value = value[: cut if cut > 0 else MAX_ADDRESS_HEADER]
    try:
        # Parse before decoding so an encoded comma inside a display name cannot split it.
        pairs = _address_pairs(value)
        if any("=?" in address and "@" not in address for _, address in pairs):
            pairs = _address_pairs(decode_header(value, defects))
    except Exception:
        defects.append("bad-address")
        return []
    result = []
    for name, address in pairs:
        parsed = _make_address(name, address, defects)
        if parsed is not None:
            result.append(parsed)
    return result


def parse_date(value: str, defects: list[str]) -> datetime | None:
    value = " ".join(_unfold(value)[:256].split())
    if not value.isascii():
        value = fix_8bit(value)
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:
        defects.append("bad-date")
        return None
    if parsed is None:
        defects.append("bad-date")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


_MSG_ID = re.compile(r"<([^<>]*)>")


def _clean_id(value: str) -> str:
    return "".join(value.split()).replace("\x00", "")[:MAX_ID_LENGTH]


def parse_message_id(value: str) -> str:
    """The msg-id of a Message-ID header without angle brackets."""
    value = _unfold(value).strip()
    match = _MSG_ID.search(value)
    if match:
        return _clean_id(match.group(1))
    tokens = value.split()
    return _clean_id(tokens[0]) if tokens else ""


def parse_in_reply_to(value: str) -> str:
    """The first msg-id of In-Reply-To; bare tokens count only if they look like one."""
    value = _unfold(value)
    for match in _MSG_ID.finditer(value):
        ident = _clean_id(match.group(1))
        if ident:
            return ident
    for token in value.split():
        if "@" in token:
            return _clean_id(token.strip("<>,;\"'()"))
    return ""


def parse_references(value: str) -> list[str]:
    value = _unfold(value)
    found = [_clean_id(m) for m in _MSG_ID.findall(value)]
    if not found:
        found = [_clean_id(token) for token in re.split(r"[\s,]+", value)]
    unique = list(dict.fromkeys(ident for ident in found if ident))
    return unique[-MAX_REFERENCES:]


_REPLY_PREFIX = re.compile(
    r"^(?:\s*+(?:(?:re|fwd?|aw|wg|sv|vs|antw|tr|rv|odp|回复|回覆|答复|转发|轉寄)"
    r"\s*+(?:\[\d++\]|\(\d++\))?+\s*+[:：]|\[[^\[\]]*+\]))+",
    re.IGNORECASE,
)


def normalize_subject(subject: str) -> str:
    """The subject reduced to what replies and forwards keep: the key for subject threading."""
    stripped = _REPLY_PREFIX.sub("", subject, count=1)
    return " ".join(stripped.split()).casefold()
