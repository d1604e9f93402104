"""What a leaf part is (type, file name, Content-ID) and its decoded bytes."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from mailcore.mime.charsets import decode_header, fix_8bit
from mailcore.mime.entities import Leaf, parse_entity, parse_params

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_BAD_QP = re.compile(rb"=(?![0-9A-Fa-f]{2}|\r?\n|$)")
_SOFT_BREAK_PADDING = re.compile(rb"=[ \t]+(?=\r?\n|$)")
_UUENCODE = frozenset({"x-uuencode", "uuencode", "x-uue", "uue"})
_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


@dataclass(slots=True)
class PartHeaders:
    content_type: str
    charset: str | None
    disposition: str  # lower-case "inline", "attachment", or ''
    filename: str  # decoded, not yet sanitized; '' if the part names no file
    content_id: str


def describe(leaf: Leaf, defects: list[str]) -> PartHeaders:
    entity = leaf.entity
    disposition, params = parse_params(entity.header("content-disposition"), defects)
    filename = params.get("filename") or entity.params.get("name") or ""
    content_id = "".join(entity.header("content-id").split()).strip("<>")
    return PartHeaders(
        content_type=entity.content_type,
        charset=entity.params.get("charset"),
        disposition=disposition,
        filename=filename,
        content_id=fix_8bit(content_id).replace("\x00", ""),
    )


def sanitize_filename(name: str, fallback: str) -> str:
    """A filename safe to offer for download: no directories, controls or bidi overrides."""
    name = _UNSAFE_NAME.sub("", name).replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    if not name:
        return fallback
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = f"{stem[: 254 - len(extension)]}.{extension}"
        else:
            name = name[:255]
    return name


def attachment_filename(data: bytes, leaf: Leaf, info: PartHeaders, defects: list[str]) -> str:
    fallback = f"attachment-{leaf.path}"
    if info.filename:
        return sanitize_filename(info.filename, fallback)
    if info.content_type in _MESSAGE_TYPES and not leaf.opaque:
        inner = parse_entity(data, leaf.entity.body_start, leaf.entity.end, "text/plain", [])
        subject = " ".join(decode_header(inner.header("subject"), defects).split())
        return f"{sanitize_filename(subject[:200], fallback)}.eml"
    return fallback


def decode_base64(data: bytes, defects: list[str]) -> bytes:
    compact = data.translate(None, b" \t\r\n\x0b\x0c")
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error:
        defects.append("bad-base64")
    cleaned = _NOT_BASE64.sub(b"", compact)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))


def decode_quoted_printable(data: bytes, defects: list[str]) -> bytes:
    # binascii.a2b_qp understands "=\n" and "=\r\n" soft breaks, but drops the rest of the
    # input at "=\r" and keeps "=" before trailing white space.
    if data.count(b"\r") != data.count(b"\r\n"):
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"= " in data or b"=\t" in data:
        data = _SOFT_BREAK_PADDING.sub(b"=", data)
    decoded = binascii.a2b_qp(data)
    if b"=" in decoded and _BAD_QP.search(data):
        defects.append("bad-quoted-printable")
    return decoded


def decode_uuencode(data: bytes, defects: list[str]) -> bytes:
    out: list[bytes] = []
    started = False
    for line in data.splitlines():
        if not started:
            started = line.startswith(b"begin ")
            continue
        if line.strip() == b"end":
            break
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            # Encoders pad lines with junk; the length character says how much is data.
            count = (line[0] - 32) & 63
            try:
                out.append(binascii.a2b_uu(line[: (count + 2) // 3 * 4 + 1]))
            except binascii.Error:
                defects.append("bad-uuencode")
    if not started:
        defects.append("bad-uuencode")
        return data
    return b"".join(out)


def _transfer_encoding(leaf: Leaf) -> str:
    tokens = leaf.entity.header("content-transfer-encoding").replace(";", " ").split()
    return tokens[0].lower() if tokens else ""


def leaf_bytes(data: bytes, leaf: Leaf, defects: list[str]) -> bytes:
    """The decoded payload of a leaf: the bytes a user downloads.

    An opaque multipart is handed out whole, headers included, so it stays a MIME entity.
    """
    entity = leaf.entity
    if leaf.opaque:
        return data[entity.start : entity.end]
    body = data[entity.body_start : entity.end]
    encoding = _transfer_encoding(leaf)
    if encoding in _IDENTITY:
        return body
    if encoding == "base64":
        return decode_base64(body, defects)
    if encoding == "quoted-printable":
        return decode_quoted_printable(body, defects)
    if encoding in _UUENCODE:
        return decode_uuencode(body, defects)
    defects.append("unknown-transfer-encoding")
    return body
