"""Turning bytes of a declared (or wrongly declared) charset into text, and RFC 2047 words."""

from __future__ import annotations

import binascii
import codecs
import re
from contextlib import suppress
from functools import lru_cache

# Labels mail software writes that Python spells differently or that are, in practice,
# a superset (the WHATWG encoding standard makes the same substitutions).
_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso_8859-1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
}
# Labels that say nothing useful: treat the bytes as unlabelled.
_UNLABELLED = frozenset({"", "us-ascii", "ascii", "ansi_x3.4-1968", "default", "unknown-8bit"})
# Text codecs that are not character sets; mail must never select them.
_REFUSED = frozenset(
    {"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode", "charmap"}
)
_UTF8 = "utf-8"


@lru_cache(maxsize=256)
def _lookup(label: str) -> tuple[str | None, bool]:
    """(codec name, whether the label was understood) for a charset label."""
    name = label.strip().strip("\"'").strip().lower()
    if name in _UNLABELLED:
        return None, True
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None, False
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return None, False
    return (_UTF8 if info.name == "utf-8" else info.name), True


def _guess(data: bytes) -> str:
    """Text from bytes whose charset is unknown: UTF-8 if it mostly is, else windows-1252."""
    try:
        return data.decode(_UTF8)
    except UnicodeDecodeError:
        pass
    text = data.decode(_UTF8, "replace")
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    if text.count("\ufffd") * 8 <= high:
        return text
    return data.decode("cp1252", "replace")


_HIGH_BYTES = bytes(range(0x80, 0x100))


def _without_surrogates(text: str) -> str:
    """UTF-7 and friends can decode to lone surrogates, which no database will store."""
    if text.isascii():
        return text
    try:
        text.encode(_UTF8)
    except UnicodeEncodeError:
        return text.encode(_UTF8, "replace").decode(_UTF8)
    return text


def decode_bytes(data: bytes, charset: str | None, defects: list[str]) -> str:
    """Decode with the declared charset, falling back to UTF-8 and then windows-1252."""
    codec, known = _lookup(charset) if charset else (None, True)
    if not known:
        defects.append("unknown-charset")
    if codec is not None:
        try:
            return _without_surrogates(data.decode(codec))
        except Exception:  # codecs raise more than UnicodeDecodeError on hostile input
            defects.append("bad-charset-data")
        if codec != _UTF8:
            # Mislabelled UTF-8 is the usual cause; bytes that are valid UTF-8 say so clearly.
            with suppress(UnicodeDecodeError):
                return data.decode(_UTF8)
            with suppress(Exception):
                return _without_surrogates(data.decode(codec, "replace"))
    if data.isascii():
        return data.decode("ascii")
    return _guess(data)


def fix_8bit(value: str, defects: list[str] | None = None) -> str:
    """Decode raw 8-bit bytes the parser smuggled in as surrogate escapes."""
    if value.isascii():
        return value
    try:
        value.encode(_UTF8)
        return value
    except UnicodeEncodeError:
        pass
    if defects is not None:
        defects.append("8bit-header")
    try:
        raw = value.encode(_UTF8, "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode(_UTF8, "replace")
    return _guess(raw)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\r\n]*)\?=")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def _word_bytes(encoding: str, text: str) -> bytes | None:
    if encoding in "bB":
        data = _NOT_BASE64.sub(b"", text.encode("ascii", "ignore"))
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        try:
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return None
    return binascii.a2b_qp(text.encode(_UTF8, "surrogateescape"), header=True)


def decode_header_value(value: str) -> str:
    """RFC 2047 decoding of one header value; unfolds it and never raises."""
    try:
        return decode_header(value, [])
    except Exception:  # last line of defence: a header must never stop ingest
        return str(value).replace("\x00", "")


def decode_header(value: object, defects: list[str]) -> str:
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = fix_8bit(text, defects)
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "").replace("\n", "")
    if "\x00" in text:
        defects.append("nul-bytes")
        text = text.replace("\x00", "")
    if "=?" not in text:
        return text
    out: list[str] = []
    pending: list[bytes] = []  # adjacent words of one charset, decoded together
    pending_charset: str | None = None
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        position = match.end()
        charset, encoding, payload = match.groups()
        charset = charset.split("*", 1)[0]
        data = _word_bytes(encoding, payload)
        if data is None:
            defects.append("bad-encoded-word")
        # Whitespace between encoded words is not part of the text (RFC 2047 section 6.2),
        # and encoders split multi-byte characters across words.
        joins = between.isspace() or not between
        if data is not None and joins and charset.lower() == (pending_charset or "").lower():
            pending.append(data)
            continue
        if pending_charset is not None:
            out.append(decode_bytes(b"".join(pending), pending_charset, defects))
            pending, pending_charset = [], None
            if not joins or data is None:
                out.append(between)
        else:
            out.append(between)
        if data is None:
            out.append(match.group(0))
        else:
            pending, pending_charset = [data], charset
    if pending_charset is not None:
        out.append(decode_bytes(b"".join(pending), pending_charset, defects))
    out.append(text[position:])
    return "".join(out).replace("\x00", "")
