"""The DATA reader, bytes in and values out."""

from __future__ import annotations

import pytest

from mailcore.smtp.data import DataReader


def read(chunks: list[bytes], limit: int = 1000):  # type: ignore[no-untyped-def]
    reader = DataReader(limit)
    for chunk in chunks:
        result = reader.feed(chunk)
        if result is not None:
            return result
    return None


def test_empty_message_ends_at_first_dot_line() -> None:
    result = read([b".\r\n"])
    assert (result.content, result.size, result.remainder) == (b"", 0, b"")


def test_dot_stuffing_is_removed_and_pipelined_bytes_are_kept() -> None:
    result = read([b"a\r\n..b\r\n", b".", b"\r\nMAIL FROM:<x@y>\r\n"])
    assert result.content == b"a\r\n.b\r\n"
    assert result.remainder == b"MAIL FROM:<x@y>\r\n"


def test_terminator_split_across_every_chunk_boundary() -> None:
    data = b"Subject: x\r\n\r\nbody\r\n.\r\n"
    for cut in range(1, len(data)):
        result = read([data[:cut], data[cut:]])
        assert result is not None and result.content == b"Subject: x\r\n\r\nbody\r\n", cut


@pytest.mark.parametrize(
    "smuggle",
    [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r"],
    ids=["LF.LF", "LF.CRLF", "CRLF.LF", "CR.CR"],
)
def test_smuggling_shapes_do_not_end_data_and_are_refused(smuggle: bytes) -> None:
    second = b"MAIL FROM:<evil@x>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nforged\r\n"
    result = read([b"Subject: one\r\n\r\nhello" + smuggle + second + b".\r\n"])
    assert result.has_bare_line_ending is True
    assert result.content == b""
    assert result.remainder == b""


def test_oversized_data_is_discarded_while_streaming() -> None:
    reader = DataReader(100)
    for _ in range(50):
        assert reader.feed(b"x" * 1000 + b"\r\n") is None
    assert len(reader._buffer) <= 5  # nothing is kept but the tail
    result = reader.feed(b".\r\n")
    assert result.is_too_big is True
    assert result.size == 50 * 1002
    assert result.content == b""
