"""Pure MIME parsing: bytes in, values out. No Django import anywhere in this package.

Parts are found by byte offsets (``entities``) rather than with email.feedparser, which is
several times slower; header decoding, charset fallbacks, part numbering and body selection
are done here so malformed mail still yields a usable result, with what was wrong listed in
``ParsedMessage.defects``. The stdlib still parses addresses and dates.
"""

from __future__ import annotations

from mailcore.mime.charsets import decode_header_value
from mailcore.mime.headers import normalize_subject
from mailcore.mime.htmltext import html_to_text
from mailcore.mime.message import extract_part, find_part_by_content_id, parse_message
from mailcore.mime.structures import Address, AttachmentInfo, ParsedMessage

__all__ = [
    "Address",
    "AttachmentInfo",
    "ParsedMessage",
    "decode_header_value",
    "extract_part",
    "find_part_by_content_id",
    "html_to_text",
    "normalize_subject",
    "parse_message",
]
