"""Reading the DATA payload: pure, no sockets, no ORM.

Only ``CRLF.CRLF`` ends DATA (RFC 5321 4.1.1.4). Messages that contain a bare CR or a bare LF
are refused whole, so none of the SMTP smuggling shapes (``\\n.\\n``, ``\\n.\\r\\n``,
``\\r\\n.\\n``, ``\\r.\\r`` followed by a second transaction) can ever create a second message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TERMINATOR = b"\r\n.\r\n"
_BARE_CR_OR_LF = re.compile(rb"(?<!\r)\n|\r(?!\n)")
_STUFFED_DOT = re.compile(rb"(^|\r\n)\.")


@dataclass(slots=True)
class DataResult:
    content: bytes  # dot-unstuffed, CRLF line endings, ends with CRLF (or empty)
    size: int  # bytes received on the wire before the terminator
    is_too_big: bool
    has_bare_line_ending: bool
    remainder: bytes  # bytes after the terminator (pipelined commands)


class DataReader:
    """Feed chunks as they arrive; :meth:`feed` returns a :class:`DataResult` once complete.

    Past ``size_limit`` the bytes are discarded (only the tail is kept to find the terminator),
    so an oversized message costs no memory.
    """

    def __init__(self, size_limit: int) -> None:
        self.size_limit = size_limit
        self._buffer = bytearray(b"\r\n")  # a virtual CRLF so ".\r\n" first ends an empty DATA
        self._discarded = 0
        self._scanned = 0

    def feed(self, chunk: bytes) -> DataResult | None:
        self._buffer += chunk
        end = self._buffer.find(TERMINATOR, max(0, self._scanned - len(TERMINATOR) + 1))
        if end < 0:
            self._scanned = len(self._buffer)
            if self._discarded or len(self._buffer) - 2 > self.size_limit:
                keep = len(TERMINATOR)
                self._discarded += len(self._buffer) - keep
                del self._buffer[:-keep]
                self._scanned = len(self._buffer)
            return None
        body = bytes(self._buffer[2 : end + 2]) if not self._discarded else b""
        size = self._discarded + end + 2 - 2
        remainder = bytes(self._buffer[end + len(TERMINATOR) :])
        too_big = self._discarded > 0 or size > self.size_limit
        if too_big:
            return DataResult(b"", size, True, False, remainder)
        bare = _BARE_CR_OR_LF.search(body) is not None
        content = b"" if bare else _STUFFED_DOT.sub(rb"\1", body)
        return DataResult(content, size, False, bare, remainder)
