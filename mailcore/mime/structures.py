"""The values the MIME parser hands back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Address:
    name: str  # decoded display name, '' if none
    address: str  # addr-spec, domain part lower-cased; never ''


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    path: str  # IMAP-style part path ("2", "1.2"); "1" for a single-part body
    filename: str  # decoded and sanitized; "attachment-<path>" when the message names none
    content_type: str  # lower-case "type/subtype"
    size: int  # decoded byte size
    content_id: str  # without <>, '' if none
    is_inline: bool  # a cid: image the HTML body shows in place


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    subject: str
    from_address: Address | None
    sender: Address | None
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    date: datetime | None  # aware (UTC when the header had no zone); None if missing or bad
    message_id: str  # without <>, at most 255 characters
    in_reply_to: str  # first msg-id of In-Reply-To, without <>
    references: list[str]  # msg-ids without <>, in order, deduplicated, the last 50
    text: str  # best plain-text body; derived from the HTML when there is no text/plain
    html: str | None
    snippet: str
    attachments: list[AttachmentInfo]
    headers: list[tuple[str, str]]  # top-level headers as written, values decoded and unfolded
    size: int  # len(raw)
    list_unsubscribe: str
    auto_submitted: str
    defects: list[str]  # short names of problems found while parsing
