"""parse_message, and the part look-ups that number parts the same way it does."""

from __future__ import annotations

import re
from contextlib import suppress
from urllib.parse import unquote

from mailcore.mime.charsets import decode_bytes, decode_header, fix_8bit
from mailcore.mime.entities import Entity, Leaf, iter_leaves, parse_entity
from mailcore.mime.headers import (
    parse_addresses,
    parse_date,
    parse_in_reply_to,
    parse_message_id,
    parse_references,
)
from mailcore.mime.htmltext import html_to_text, make_snippet
from mailcore.mime.parts import PartHeaders, attachment_filename, describe, leaf_bytes
from mailcore.mime.structures import Address, AttachmentInfo, ParsedMessage

_ADDRESS_HEADERS = ("from", "sender", "reply-to", "to", "cc", "bcc")
_REQUIRED_HEADERS = ("from", "date", "subject", "message-id")
_BODY_TYPES = ("text/plain", "text/html")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_MAX_HEADER_LINE = 998  # RFC 5322 section 2.1.1
# html.parser handles about 4 MB/s; the text of an HTML-only body is for search and snippets,
# so only this much of a huge one is converted at ingest.
HTML_TEXT_LIMIT = 256 * 1024


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _parse(data: bytes, defects: list[str]) -> tuple[Entity, list[Leaf]]:
    top = parse_entity(data, 0, len(data), "text/plain", defects)
    return top, iter_leaves(data, top, defects)


def _body_text(raw: bytes, leaf: Leaf, info: PartHeaders, defects: list[str]) -> str:
    data = leaf_bytes(raw, leaf, defects)
    charset = info.charset
    if charset is None and info.content_type == "text/html":
        match = _META_CHARSET.search(data, 0, 4096)
        charset = match.group(1).decode("ascii") if match else None
    text = decode_bytes(data, charset, defects)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        defects.append("nul-bytes")
        text = text.replace("\x00", "")
    return text


def _join(chunks: list[str]) -> str:
    if len(chunks) == 1:
        return chunks[0]
    return "\n".join(chunk.rstrip("\n") for chunk in chunks if chunk.strip()) or chunks[0]


def _is_alternative_rendition(leaf: Leaf, info: PartHeaders) -> bool:
    """text/enriched and the like beside the chosen body: not something to download."""
    return (
        leaf.alternative is not None
        and info.content_type.startswith("text/")
        and info.content_type != "text/calendar"
        and info.disposition != "attachment"
        and not info.filename
    )


def _build(data: bytes, defects: list[str]) -> ParsedMessage:
    top, leaves = _parse(data, defects)
    headers: list[tuple[str, str]] = []
    first: dict[str, str] = {}
    decoded: dict[str, str] = {}
    address_values: dict[str, list[str]] = {name: [] for name in _ADDRESS_HEADERS}
    for name, value in top.headers:
        if len(value) > _MAX_HEADER_LINE:
            defects.append("long-header")
        text = decode_header(value, defects)
        headers.append((name, text))
        key = name.lower()
        if key not in first:
            first[key] = fix_8bit(value)
            decoded[key] = text
        if key in address_values:
            address_values[key].append(value)
    if not headers:
        defects.append("no-headers")
    defects.extend(f"missing-{name}" for name in _REQUIRED_HEADERS if name not in first)
    addresses = {
        name: parse_addresses(", ".join(values), defects) if values else []
        for name, values in address_values.items()
    }

    plain: list[str] = []
    html: list[str] = []
    chosen: dict[str, set[str]] = {"text/plain": set(), "text/html": set()}
    attachments: list[AttachmentInfo] = []
    for leaf in leaves:
        info = describe(leaf, defects)
        if (
            info.content_type in _BODY_TYPES
            and not leaf.opaque
            and info.disposition != "attachment"
            and not info.filename
        ):
            groups = chosen[info.content_type]
            if leaf.alternative is not None:
                if leaf.alternative in groups:
                    continue  # a second rendition inside one multipart/alternative
                groups.add(leaf.alternative)
            body = _body_text(data, leaf, info, defects)
            (plain if info.content_type == "text/plain" else html).append(body)
            continue
        if _is_alternative_rendition(leaf, info):
            continue
        attachments.append(
            AttachmentInfo(
                path=leaf.path,
                filename=attachment_filename(data, leaf, info, defects),
                content_type=info.content_type,
                size=len(leaf_bytes(data, leaf, defects)),
                content_id=info.content_id,
                is_inline=bool(info.content_id)
                and (info.disposition == "inline" or (leaf.related and not info.disposition)),
            )
        )

    html_body = _join(html) if html else None
    text = _join(plain) if plain else html_to_text(html_body[:HTML_TEXT_LIMIT] if html_body else "")
    date_value = first.get("date")
    return ParsedMessage(
        subject=" ".join(decoded.get("subject", "").split()),
        from_address=_first(addresses["from"]),
        sender=_first(addresses["sender"]),
        reply_to=addresses["reply-to"],
        to=addresses["to"],
        cc=addresses["cc"],
        bcc=addresses["bcc"],
        date=parse_date(date_value, defects) if date_value is not None else None,
        message_id=parse_message_id(first.get("message-id", "")),
        in_reply_to=parse_in_reply_to(first.get("in-reply-to", "")),
        references=parse_references(first.get("references", "")),
        text=text,
        html=html_body,
        snippet=make_snippet(text),
        attachments=attachments,
        headers=headers,
        size=len(data),
        list_unsubscribe=_unfolded(first.get("list-unsubscribe", "")),
        auto_submitted=_unfolded(first.get("auto-submitted", "")).lower(),
        defects=list(dict.fromkeys(defects)),
    )


def _first(addresses: list[Address]) -> Address | None:
    return addresses[0] if addresses else None


def _unfolded(value: str) -> str:
    return value.replace("\r", "").replace("\n", "").replace("\x00", "").strip()


def _unparsed(data: bytes, defects: list[str]) -> ParsedMessage:
    """What is left when building the result itself failed: the bytes as text."""
    text = data.decode("utf-8", "replace").replace("\x00", "")
    return ParsedMessage(
        subject="",
        from_address=None,
        sender=None,
        reply_to=[],
        to=[],
        cc=[],
        bcc=[],
        date=None,
        message_id="",
        in_reply_to="",
        references=[],
        text=text,
        html=None,
        snippet=make_snippet(text),
        attachments=[],
        headers=[],
        size=len(data),
        list_unsubscribe="",
        auto_submitted="",
        defects=list(dict.fromkeys([*defects, "parse-error"])),
    )


def parse_message(raw: bytes) -> ParsedMessage:
    """Everything ingest, threading and search need from a message. Never raises."""
    data = _as_bytes(raw)
    defects: list[str] = []
    try:
        return _build(data, defects)
    except Exception:  # a corner case this parser missed: keep the mail anyway
        return _unparsed(data, defects)


def extract_part(raw: bytes, path: str) -> tuple[bytes, str, str]:
    """(decoded payload, content type, filename) of the part at an IMAP-style path.

    Raises KeyError when the message has no such part.
    """
    defects: list[str] = []
    with suppress(Exception):  # an unreadable message has no parts to hand out
        data = _as_bytes(raw)
        for leaf in _parse(data, defects)[1]:
            if leaf.path == path:
                info = describe(leaf, defects)
                filename = attachment_filename(data, leaf, info, defects)
                return leaf_bytes(data, leaf, defects), info.content_type, filename
    raise KeyError(path)


def _normalize_content_id(value: str) -> str:
    value = "".join(str(value).split())
    if value[:4].lower() == "cid:":
        value = value[4:]
    return value.strip("<>")


def find_part_by_content_id(raw: bytes, content_id: str) -> str | None:
    """Path of the part a cid: URL (or a bare Content-ID) points at, or None."""
    try:
        wanted = _normalize_content_id(content_id)
        if not wanted:
            return None
        candidates = {wanted, unquote(wanted)}
        folded_candidates = {candidate.casefold() for candidate in candidates}
        case_insensitive: str | None = None
        for leaf in _parse(_as_bytes(raw), [])[1]:
            found = fix_8bit(_normalize_content_id(leaf.entity.header("content-id")))
            if found in candidates:
                return leaf.path
            if case_insensitive is None and found and found.casefold() in folded_candidates:
                case_insensitive = leaf.path
        return case_insensitive
    except Exception:
        return None
