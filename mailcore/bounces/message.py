"""Lenient MIME helpers: line-ending normalisation, decoded text parts, returned headers."""

from __future__ import annotations

import email
import email.header
import re
from dataclasses import dataclass, field
from email.message import Message
from email.policy import compat32
from typing import cast

ADDRESS_RE = re.compile(
    r"(?<![\w.+=/-])([a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]{2,})(?![\w-])",
    re.IGNORECASE,
)
WANTED_ORIGINAL_HEADERS = ("message-id", "from", "to", "subject", "date", "x-mailroom-token")
HEADER_LINE_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$")

# Lines that start the copy of the returned message inside a plain-text notification.
ORIGINAL_MARKERS = re.compile(
    r"^\s*(?:"
    r"-+ ?This is a copy of the message|"
    r"-+ ?(?:The )?header of the original message|"
    r"-+ ?Below this line is a copy of the message|"
    r"-+ ?Original message follows|"
    r"Original message follows\.?\s*$|"
    r"-+ ?Original [Mm]essage -*\s*$|"
    r"-+ ?Original message header|"
    r"-+ ?(?:Unsent|Returned|Undelivered) message follows|"
    r"-+ ?Returned mail follows|"
    r"-+ ?Returned [Mm]essage -*|"
    r"-+ ?Original [Mm]essage [Hh]eaders? -*|"
    r"-+ ?Message headers? follows?|"
    r"Message headers follow\.?\s*$|"
    r"-+ ?The (?:original|returned) message|"
    r"-+ ?(?:Included|Enclosed) is a copy of the message|"
    r"-+ ?Unsent Message below|"
    r"-+ ?Original text follows|"
    r"-+ ?Your message follows|"
    r"-+ ?Failed message follows|"
    r"-+ ?Rejected message header|"
    r"-+ ?Headers? of the (?:original|returned) message|"
    r"Content-Type: message/rfc822|"
    r"-+ ?(?:Start|Begin) of (?:returned|original) message|"
    r"-+ ?Forwarded message|"
    r"-+ ?Message text follows|"
    r"Below is a copy of the original message"
    r")",
    re.IGNORECASE | re.MULTILINE,
)


def normalise_newlines(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def collapse(text: str, limit: int = 1000) -> str:
    return " ".join(text.split())[:limit]


def decode_header_value(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        try:
            return str(email.header.make_header(email.header.decode_header(value)))  # type: ignore[arg-type]
        except Exception:
            return str(value)
    if "=?" not in value:
        return collapse(value, 2000)
    try:
        return collapse(str(email.header.make_header(email.header.decode_header(value))), 2000)
    except Exception:
        return collapse(value, 2000)


def part_text(part: Message) -> str:
    """Return the decoded text of a leaf part (never raises)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    if not isinstance(payload, bytes):
        return str(payload)
    charset = (part.get_content_charset() or "").strip().strip('"').lower()
    for candidate in (charset, "utf-8", "latin-1"):
        if not candidate:
            continue
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1", "replace")


@dataclass(slots=True)
class Parsed:
    """The pieces of a message the bounce rules look at."""

    message: Message
    headers: dict[str, str]
    notification: str = ""  # human-readable report text, original message cut off
    full_text: str = ""  # every text part including inline original (for markers)
    delivery_status: list[str] = field(default_factory=list)
    feedback_report: list[str] = field(default_factory=list)
    original_headers: dict[str, str] = field(default_factory=dict)
    original_raw_headers: str = ""
    content_type: str = ""


def _header_map(message: Message) -> dict[str, str]:
    result: dict[str, str] = {}
    try:
        items = message.items()
    except Exception:
        return result
    for name, value in items:
        key = name.lower()
        if key not in result:
            result[key] = decode_header_value(value)
        elif key in ("received",):
            continue
    return result


def headers_from_text(text: str) -> dict[str, str]:
    """Parse a header block that is embedded in plain text (lenient)."""
    result: dict[str, str] = {}
    current = ""
    started = False
    for line in text.split("\n")[:400]:
        if not line.strip():
            if started:
                break
            continue
        match = HEADER_LINE_RE.match(line)
        if match:
            started = True
            current = match.group(1).lower()
            if current not in result:
                result[current] = match.group(2)
            else:
                current = ""
        elif line[:1] in (" ", "\t") and current:
            result[current] += " " + line.strip()
        elif started:
            # Non-header text in the middle of a block: keep scanning, the copy may be ragged.
            current = ""
    return {key: decode_header_value(value) for key, value in result.items()}


def _delivery_status_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = []
        for sub in payload:
            if isinstance(sub, Message):
                lines = [f"{name}: {value}" for name, value in sub.items()]
                body = sub.get_payload()
                if isinstance(body, str) and body.strip():
                    lines.append(body)
                blocks.append("\n".join(lines))
        return "\n\n".join(blocks)
    return part_text(part)


def cut_original(text: str) -> tuple[str, str]:
    match = ORIGINAL_MARKERS.search(text)
    if not match:
        return text, ""
    return text[: match.start()], text[match.end() :]


def parse_message(raw: bytes) -> Parsed:
    message = email.message_from_bytes(normalise_newlines(raw), policy=compat32)
    parsed = Parsed(message=message, headers=_header_map(message))
    parsed.content_type = message.get_content_type()
    texts: list[str] = []
    html_texts: list[str] = []
    original_chunks: list[str] = []
    stack: list[tuple[Message, bool]] = [(message, False)]
    while stack:
        part, inside_original = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart() and ctype.startswith("multipart/"):
            children = part.get_payload()
            if isinstance(children, list):
                # A multipart payload parsed with compat32 is a list of Message objects.
                stack[0:0] = [(child, inside_original) for child in cast("list[Message]", children)]
            continue
        if ctype in ("message/rfc822", "message/rfc822-headers", "message/partial") or (
            ctype == "text/rfc822-headers"
        ):
            if not parsed.original_headers:
                body = part.get_payload()
                if isinstance(body, list) and body and isinstance(body[0], Message):
                    parsed.original_headers = _header_map(body[0])
                else:
                    text = part_text(part) if not isinstance(body, list) else ""
                    parsed.original_raw_headers = text
                    parsed.original_headers = headers_from_text(text)
            continue
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            parsed.delivery_status.append(_delivery_status_text(part))
            continue
        if ctype == "message/feedback-report":
            parsed.feedback_report.append(_delivery_status_text(part))
            continue
        if inside_original or part.is_multipart():
            continue
        if ctype.startswith("text/") or ctype in ("message/disposition-notification",):
            text = part_text(part)
            if ctype == "text/html":
                html_texts.append(strip_html(text))
            else:
                texts.append(text)
    if not texts and html_texts:
        texts = html_texts
    parsed.full_text = "\n".join(texts)
    notification, rest = cut_original(parsed.full_text)
    parsed.notification = notification
    if rest:
        original_chunks.append(rest)
    if not parsed.original_headers and original_chunks:
        parsed.original_headers = headers_from_text(original_chunks[0].lstrip("\n -"))
    return parsed


TAG_RE = re.compile(r"<(?:script|style)[^>]*>.*?</(?:script|style)>|<[^>]+>", re.S | re.I)


def strip_html(text: str) -> str:
    text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", text, flags=re.I)
    text = TAG_RE.sub(" ", text)
    return (
        text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&amp;", "&")
    )


def first_address(value: str) -> str:
    match = ADDRESS_RE.search(value or "")
    return match.group(1).lower() if match else ""


def clean_message_id(value: str) -> str:
    value = (value or "").strip()
    match = re.search(r"<([^<>\s]+)>", value)
    if match:
        return match.group(1)
    return value.split()[0].strip("<>") if value.split() else ""
