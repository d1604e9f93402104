"""Splitting raw message bytes into MIME entities by byte offsets.

A small replacement for email.feedparser: that one runs Python code for every line of the
message (0.3 ms for 10 KB, 0.4 s for a 10 MB attachment); this one runs Python code for every
header field and every part, and finds boundaries with bytes.find. Offsets into the original
bytes also give exact bytes for enclosed messages and over-deep multiparts.

Part paths follow IMAP (RFC 3501 BODY[1.2]): the children of a multipart are numbered from 1,
and a message that is not multipart has the single part "1". message/rfc822 parts are not
entered: they are attachments whose bytes are the whole enclosed message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from mailcore.mime.charsets import decode_bytes, decode_header

MAX_DEPTH = 32  # multipart levels entered; deeper multiparts are opaque attachments
MAX_PARTS = 1000
MAX_HEADER_FIELDS = 5000

_LINE_END = re.compile(rb"\r\n|\n|\r")
# A header field with its continuation lines; the line break after it is consumed too.
_FIELD = re.compile(
    rb"([!-9;-~]+)[ \t]*:[ \t]*([^\r\n]*(?:(?:\r\n|\n|\r)[ \t][^\r\n]*)*)(?:\r\n|\n|\r|\Z)"
)
_CONTENT_TYPE = re.compile(r"[a-z0-9!#$%&'*+.^_`{|}~-]+/[a-z0-9!#$%&'*+.^_`{|}~-]+")
_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_CR, _LF, _SPACE, _TAB = 13, 10, 32, 9


@dataclass(slots=True)
class Entity:
    """One MIME entity: data[start:body_start] holds its headers, the body runs to end."""

    start: int
    body_start: int
    end: int
    headers: list[tuple[str, str]]  # as written; values unfolded, 8-bit bytes surrogate-escaped
    content_type: str
    params: dict[str, str]  # Content-Type parameters
    first: dict[str, str] = field(default_factory=dict)  # first value by lower-case name

    def header(self, name: str) -> str:
        return self.first.get(name, "")


@dataclass(slots=True)
class Leaf:
    """A part that is not entered further: a body, an attachment or an opaque multipart."""

    path: str
    entity: Entity
    alternative: str | None  # path of the nearest multipart/alternative ancestor
    related: bool  # the parent is multipart/related
    opaque: bool  # a multipart nested deeper than MAX_DEPTH


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"'):
        value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
        if "\\" in value:
            value = _QUOTED_PAIR.sub(r"\1", value)
    return value


def parse_params(value: str, defects: list[str]) -> tuple[str, dict[str, str]]:
    """Main value and parameters of a structured header, with RFC 2231 and RFC 2047 decoding."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    if not rest:
        return main.strip().lower(), params
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    for match in _PARAM.finditer(f";{rest}"):
        key, raw = match.group(1).lower(), _unquote(match.group(2))
        if "*" not in key:
            params.setdefault(key, raw)
            continue
        name, _, number = key.partition("*")
        is_encoded = number.endswith("*") or number == ""
        number = number.rstrip("*")
        order = int(number) if number.isascii() and number.isdigit() and len(number) < 6 else 0
        sections.setdefault(name, []).append((order, is_encoded, raw))
    for name, pieces in sections.items():
        pieces.sort(key=lambda piece: piece[0])
        charset = None
        chunks: list[bytes] = []
        for position, (_, is_encoded, raw) in enumerate(pieces):
            if is_encoded and position == 0 and raw.count("'") >= 2:
                charset, _, raw = raw.split("'", 2)
            raw_bytes = raw.encode("utf-8", "surrogateescape")
            chunks.append(unquote_to_bytes(raw_bytes) if is_encoded else raw_bytes)
        params[name] = decode_bytes(b"".join(chunks), charset or None, defects)
    for name in ("filename", "name"):
        if name in params:
            params[name] = decode_header(params[name], defects)
    return main.strip().lower(), params


def _find_blank_line(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the body): the first empty line, in any line style.

    Three bounded finds instead of one regex: bytes.find is ten times faster, and each find
    after the first hit only looks at the header block.
    """
    crlf_first = data.find(b"\r\n", start, min(end, start + 4096)) >= 0
    needles = (b"\n\r\n", b"\n\n", b"\r\r") if crlf_first else (b"\n\n", b"\n\r\n", b"\r\r")
    found, body_start = end, end
    for needle in needles:
        position = data.find(needle, start, min(end, found + len(needle) - 1))
        if 0 <= position < found:
            found, body_start = position, position + len(needle)
    return found, body_start


def _parse_headers(
    data: bytes, start: int, end: int, defects: list[str]
) -> tuple[list[tuple[str, str]], int]:
    """Header fields of the entity at data[start:end] and the offset where its body begins."""
    if data.startswith(b"\r\n", start, end):
        return [], start + 2
    if start < end and data[start] in (_CR, _LF):
        return [], start + 1
    block_end, body_start = _find_blank_line(data, start, end)
    headers: list[tuple[str, str]] = []
    position = start
    while position < block_end:
        for match in _FIELD.finditer(data, position, block_end):
            if match.start() != position:
                break
            name, value = match.groups()
            if b"\n" in value or b"\r" in value:
                value = value.replace(b"\r", b"").replace(b"\n", b"")
            headers.append((name.decode("ascii"), value.decode("ascii", "surrogateescape")))
            position = match.end()
            if len(headers) >= MAX_HEADER_FIELDS:
                break
        if len(headers) >= MAX_HEADER_FIELDS:
            defects.append("too-many-headers")
            break
        if position >= block_end:
            break
        line_end = _LINE_END.search(data, position, block_end)
        next_line = line_end.end() if line_end else block_end
        if data[position] in (_SPACE, _TAB):
            defects.append("first-header-line-is-continuation")
        elif not (position == start and data.startswith(b"From ", position)):  # mbox envelope
            defects.append("missing-header-body-separator")
            return headers, position
        position = next_line
    return headers, body_start


def parse_entity(
    data: bytes, start: int, end: int, default_type: str, defects: list[str]
) -> Entity:
    headers, body_start = _parse_headers(data, start, end, defects)
    first: dict[str, str] = {}
    for name, value in headers:
        first.setdefault(name.lower(), value)
    content_type = default_type
    params: dict[str, str] = {}
    if "content-type" in first:
        main, params = parse_params(first["content-type"], defects)
        if _CONTENT_TYPE.fullmatch(main):
            content_type = main
        else:
            defects.append("invalid-content-type")
    return Entity(start, body_start, end, headers, content_type, params, first)


def _split(data: bytes, entity: Entity, defects: list[str]) -> list[tuple[int, int]] | None:
    """Byte ranges of a multipart's body parts; None if its boundary never appears."""
    boundary = entity.params.get("boundary", "").rstrip()
    if not boundary:
        defects.append("no-boundary-in-multipart")
        return None
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    start, end = entity.body_start, entity.end
    ranges: list[tuple[int, int]] = []
    part_start = -1
    position = start
    while True:
        found = data.find(delimiter, position, end)
        if found < 0:
            break
        after = position = found + len(delimiter)
        if found > start and data[found - 1] not in (_CR, _LF):
            continue
        is_close = data.startswith(b"--", after) and after + 2 <= end
        if is_close:
            after += 2
        while after < end and data[after] in (_SPACE, _TAB):
            after += 1
        if after < end and data[after] not in (_CR, _LF):
            continue
        if part_start >= 0:
            part_end = found
            if part_end > part_start and data[part_end - 1] == _LF:
                part_end -= 1
            if part_end > part_start and data[part_end - 1] == _CR:
                part_end -= 1
            ranges.append((part_start, part_end))
        if is_close:
            return ranges
        if data.startswith(b"\r\n", after):
            after += 2
        elif after < end:
            after += 1
        part_start = position = after
    if part_start < 0:
        defects.append("start-boundary-not-found")
        return None
    defects.append("close-boundary-not-found")
    ranges.append((part_start, end))
    return ranges


def iter_leaves(data: bytes, top: Entity, defects: list[str]) -> list[Leaf]:
    leaves: list[Leaf] = []
    if not _walk(data, top, "", 1, None, leaves, defects):
        leaves.append(Leaf("1", top, None, False, False))
    return leaves


def _walk(
    data: bytes,
    container: Entity,
    prefix: str,
    depth: int,
    alternative: str | None,
    leaves: list[Leaf],
    defects: list[str],
) -> bool:
    """Add the leaves under a multipart; False (and nothing added) if it is not one."""
    main, _, subtype = container.content_type.partition("/")
    if main != "multipart":
        return False
    ranges = _split(data, container, defects)
    if ranges is None:
        container.content_type = "text/plain"  # show the body rather than lose it
        return False
    if subtype == "alternative":
        alternative = prefix
    child_type = "message/rfc822" if subtype == "digest" else "text/plain"
    for index, (start, end) in enumerate(ranges, 1):
        if len(leaves) >= MAX_PARTS:
            defects.append("too-many-parts")
            break
        path = f"{prefix}{index}"
        child = parse_entity(data, start, end, child_type, defects)
        is_multipart = child.content_type.startswith("multipart/")
        if is_multipart and depth >= MAX_DEPTH:
            defects.append("max-depth")
            leaves.append(Leaf(path, child, alternative, subtype == "related", True))
        elif not (
            is_multipart and _walk(data, child, f"{path}.", depth + 1, alternative, leaves, defects)
        ):
            leaves.append(Leaf(path, child, alternative, subtype == "related", False))
    return True
