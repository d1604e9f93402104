"""mailcore.mime: bytes in, values out. Fixtures are real-shaped .eml files."""

from __future__ import annotations

import ast
import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import getaddresses
from pathlib import Path

import pytest

from mailcore.mime import (
    Address,
    AttachmentInfo,
    ParsedMessage,
    decode_header_value,
    extract_part,
    find_part_by_content_id,
    html_to_text,
    normalize_subject,
    parse_message,
)
from mailcore.mime.headers import MAX_ADDRESS_HEADER, _address_pairs
from mailcore.mime.message import HTML_TEXT_LIMIT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mime"
ALL_FIXTURES = sorted(FIXTURES.glob("*.eml"))
PACKAGE = Path(__file__).resolve().parents[2] / "mailcore" / "mime"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def all_strings(parsed: ParsedMessage) -> list[str]:
    addresses = [parsed.from_address, parsed.sender, *parsed.reply_to, *parsed.to]
    addresses += [*parsed.cc, *parsed.bcc]
    strings = [parsed.subject, parsed.message_id, parsed.in_reply_to, parsed.text, parsed.snippet]
    strings += [parsed.html or "", parsed.list_unsubscribe, parsed.auto_submitted]
    strings += [*parsed.references, *parsed.defects]
    strings += [part for header in parsed.headers for part in header]
    strings += [part for a in addresses if a is not None for part in (a.name, a.address)]
    for info in parsed.attachments:
        strings += [info.path, info.filename, info.content_type, info.content_id]
    return strings


def assert_storable(parsed: ParsedMessage) -> None:
    """Everything a database row gets: no NUL (PostgreSQL refuses it), no lone surrogates."""
    for value in all_strings(parsed):
        assert isinstance(value, str)
        assert "\x00" not in value
        value.encode("utf-8")  # raises on lone surrogates
    assert all(a.address for a in [*parsed.to, *parsed.cc, *parsed.bcc, *parsed.reply_to])
    assert parsed.date is None or parsed.date.tzinfo is not None
    assert len(parsed.message_id) <= 255
    assert len(parsed.references) <= 50
    assert len(parsed.snippet) <= 200


# --- Fixtures, one by one -----------------------------------------------------------------


def test_plain_ascii() -> None:
    raw = load("plain_ascii.eml")
    parsed = parse_message(raw)
    assert parsed.subject == "Re: Lunch on Friday?"
    assert parsed.from_address == Address("Alice Example", "alice@example.com")
    assert parsed.sender is None
    assert parsed.to == [Address("Bob", "bob@example.org")]
    assert parsed.cc == [
        Address("", "carol@example.net"),
        Address("Dave, D.", "Dave@example.net"),  # local part keeps its case
    ]
    assert parsed.bcc == [] and parsed.reply_to == []
    assert parsed.date == datetime(2025, 3, 3, 9, 15, tzinfo=UTC)
    assert parsed.date.utcoffset() == timedelta(hours=1)
    assert parsed.message_id == "20250303091500.ABC123@mail.example.com"
    assert parsed.in_reply_to == "CAF=abc123@mail.example.org"
    assert parsed.references == ["CAF=abc123@mail.example.org"]
    assert parsed.text == (
        "Sounds good, see you at noon.\n\nAlice\n\n"
        "On Sun, 2 Mar 2025 at 18:00, Bob <bob@example.org> wrote:\n"
        "> Lunch on Friday?\n> The usual place.\n"
    )
    assert parsed.html is None
    assert parsed.snippet == (
        "Sounds good, see you at noon. Alice On Sun, 2 Mar 2025 at 18:00, "
        "Bob <bob@example.org> wrote:"
    )
    assert parsed.attachments == []
    assert parsed.size == len(raw) == 789
    assert parsed.defects == []
    assert [name for name, _ in parsed.headers] == [
        "Return-Path",
        "Received",
        "From",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    ]
    assert parsed.headers[1][1] == (
        "from mail.example.com (mail.example.com [192.0.2.10])"
        "\tby mx.example.org (Postfix) with ESMTPS id 4F1A2B3C4D"
        "\tfor <bob@example.org>; Mon, 03 Mar 2025 09:15:02 +0000 (UTC)"
    )


def test_utf8_8bit_body_and_raw_utf8_subject() -> None:
    parsed = parse_message(load("utf8_8bit.eml"))
    assert parsed.subject == "Grüße aus München — Übersicht"
    assert parsed.from_address == Address("Jürgen Müller", "juergen@example.de")
    assert parsed.text == (
        "Hallo zusammen,\n\ndie Übersicht für März: 3 Termine, 2 Räume, 1 Café ☕.\n"
        "Schöne Grüße\nJürgen\n"
    )
    assert parsed.snippet == (
        "Hallo zusammen, die Übersicht für März: 3 Termine, 2 Räume, 1 Café ☕. Schöne Grüße Jürgen"
    )
    assert parsed.date == datetime(2025, 3, 4, 7, 0, tzinfo=UTC)
    assert parsed.defects == ["8bit-header"]


def test_iso_8859_1_quoted_printable() -> None:
    parsed = parse_message(load("latin1_qp.eml"))
    assert parsed.subject == "Résumé de la réunion"
    assert parsed.from_address == Address("François Lefèvre", "francois@example.fr")
    assert parsed.text == (
        "Bonjour Hélène,\n\nVoici le résumé de la réunion de lundi : le budget prévisionnel "
        "a été approuvé à l'unanimité, et la fête aura lieu à Noël.\n\nÀ bientôt,\nFrançois\n"
    )
    assert parsed.snippet == (
        "Bonjour Hélène, Voici le résumé de la réunion de lundi : le budget prévisionnel a été "
        "approuvé à l'unanimité, et la fête aura lieu à Noël. À bientôt, François"
    )
    assert parsed.defects == []


def test_rfc2047_words_in_subject_and_addresses() -> None:
    parsed = parse_message(load("encoded_words.eml"))
    # The two B words split "日" between them; they must be joined before decoding.
    assert parsed.subject == "Quarterly report — 日本語のテスト"
    assert parsed.from_address == Address("Renée Åström", "renee@example.se")
    assert parsed.to == [
        Address("山田太郎", "yamada@example.jp"),  # ISO-2022-JP
        Address("Doe, John", "john.doe@example.com"),  # an encoded comma does not split
    ]
    assert parsed.date == datetime(2025, 3, 7, 7, 59, 59, tzinfo=UTC)
    assert parsed.date.utcoffset() == timedelta(hours=-8)
    assert parsed.text == "Hej! Bifogar rapporten.\n"
    assert parsed.defects == []


ALTERNATIVE_TEXT = (
    "Top stories this week:\n- Rust 2.0 released – maybe\n- Tea prices up 3%\n\n"
    "Read more at https://example.com/digest/42"
)


def test_multipart_alternative() -> None:
    raw = load("alternative.eml")
    parsed = parse_message(raw)
    assert parsed.subject == "Weekly digest"
    assert parsed.from_address == Address("News Desk", "news@example.com")
    assert parsed.text == ALTERNATIVE_TEXT
    assert parsed.html is not None
    assert parsed.html.startswith("<!DOCTYPE html><html><head><title>Digest</title>")
    assert '<a href="https://example.com/digest/42">our site</a>&nbsp;&amp; enjoy.' in parsed.html
    assert parsed.html.endswith("</script></body></html>")
    assert parsed.snippet == (
        "Top stories this week: - Rust 2.0 released – maybe - Tea prices up 3% "
        "Read more at https://example.com/digest/42"
    )
    assert parsed.list_unsubscribe == (
        "<https://example.com/unsub?u=42>, <mailto:unsub@example.com?subject=unsubscribe>"
    )
    assert parsed.attachments == []
    assert parsed.defects == []
    assert parsed.size == len(raw) == 1158
    assert extract_part(raw, "2")[1:] == ("text/html", "attachment-2")
    with pytest.raises(KeyError):
        extract_part(raw, "3")


def test_line_endings_lf_crlf_and_cr_give_the_same_message() -> None:
    lf = load("alternative.eml")
    crlf = load("alternative_crlf.eml")
    assert b"\r\n" not in lf and crlf.count(b"\r\n") == crlf.count(b"\n")
    cr_only = lf.replace(b"\n", b"\r")
    results = [parse_message(raw) for raw in (lf, crlf, cr_only)]
    for parsed in results:
        assert parsed.text == ALTERNATIVE_TEXT
        assert parsed.html == results[0].html
        assert parsed.headers == results[0].headers
        assert parsed.list_unsubscribe == results[0].list_unsubscribe
        assert parsed.defects == []
    assert [r.size for r in results] == [len(lf), len(crlf), len(cr_only)]


def test_multipart_mixed_with_pdf() -> None:
    raw = load("mixed_pdf.eml")
    parsed = parse_message(raw)
    assert parsed.text == "Please find your invoice attached."
    assert parsed.attachments == [
        AttachmentInfo("2", "invoice-2025-0042.pdf", "application/pdf", 303, "", False)
    ]
    data, content_type, filename = extract_part(raw, "2")
    assert (content_type, filename, len(data)) == ("application/pdf", "invoice-2025-0042.pdf", 303)
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    assert extract_part(raw, "1") == (
        b"Please find your invoice attached.",
        "text/plain",
        "attachment-1",
    )


def test_inline_cid_image_in_multipart_related() -> None:
    raw = load("related_cid.eml")
    parsed = parse_message(raw)
    assert parsed.text == "Here is the new logo: [logo]"
    assert parsed.html == (
        '<html><body><p>Here is the new logo:</p><img src="cid:logo.png@01DB9A" alt="logo">'
        "</body></html>"
    )
    assert parsed.date == datetime(2025, 3, 9, 11, 15, tzinfo=UTC)
    assert parsed.attachments == [
        AttachmentInfo("2.2", "logo.png", "image/png", 70, "logo.png@01DB9A", True),
        # No Content-Disposition, but a Content-ID inside multipart/related: shown in place.
        AttachmentInfo("2.3", "attachment-2.3", "image/png", 70, "spacer@01DB9A", True),
    ]
    data, content_type, filename = extract_part(raw, "2.2")
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) == 70
    assert (content_type, filename) == ("image/png", "logo.png")
    assert find_part_by_content_id(raw, "cid:logo.png@01DB9A") == "2.2"
    assert find_part_by_content_id(raw, "<logo.png@01DB9A>") == "2.2"
    assert find_part_by_content_id(raw, "logo.png%4001DB9A") == "2.2"  # URL-encoded cid: URL
    assert find_part_by_content_id(raw, "LOGO.PNG@01db9a") == "2.2"
    assert find_part_by_content_id(raw, "spacer@01DB9A") == "2.3"
    assert find_part_by_content_id(raw, "missing@01DB9A") is None
    assert find_part_by_content_id(raw, "") is None
    with pytest.raises(KeyError):
        extract_part(raw, "2")  # a multipart container, not a part with a payload


def test_rfc2231_and_unsafe_filenames() -> None:
    raw = load("rfc2231_filename.eml")
    parsed = parse_message(raw)
    assert parsed.text == "Four files attached."
    assert [(a.path, a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        ("2", "€ rates 2025.pdf", "application/pdf", 10),
        ("3", "Rapport année finale.csv", "text/csv", 10),  # continuations, ISO-8859-1
        ("4", "Отчёт.docx", "application/octet-stream", 10),  # RFC 2047 inside quotes
        ("5", "evilgpj.exe", "application/x-msdownload", 2),  # no path, no RLO override
    ]
    assert extract_part(raw, "3") == (b"a,b\r\n1,2\r\n", "text/csv", "Rapport année finale.csv")
    assert parsed.defects == ["8bit-header"]


def test_forwarded_message_rfc822() -> None:
    raw = load("forwarded_rfc822.eml")
    parsed = parse_message(raw)
    assert parsed.subject == "Fwd: Project kickoff notes"
    assert parsed.text == "FYI, see below."
    assert parsed.html is None  # the forwarded message's HTML stays inside the attachment
    [info] = parsed.attachments
    assert info == AttachmentInfo(
        "2", "Project kickoff notes.eml", "message/rfc822", 411, "", False
    )
    data, content_type, filename = extract_part(raw, "2")
    assert (content_type, filename, len(data)) == (
        "message/rfc822",
        "Project kickoff notes.eml",
        411,
    )
    assert data.startswith(b"From: Original Sender <orig@example.net>\r\n")
    assert data.endswith(b"--inner-alt--\r\n")
    inner = parse_message(data)
    assert inner.subject == "Project kickoff notes"
    assert inner.from_address == Address("Original Sender", "orig@example.net")
    assert inner.text == "Kickoff is on Thursday."
    assert inner.html == "<p>Kickoff is on <b>Thursday</b>.</p>"
    assert inner.defects == []


def test_closing_boundary_missing() -> None:
    raw = load("broken_boundary.eml")
    parsed = parse_message(raw)
    assert parsed.text == "Body before the attachment."
    assert parsed.attachments == [AttachmentInfo("2", "data.zip", "application/zip", 42, "", False)]
    assert extract_part(raw, "2")[0] == b"PK" + bytes(range(40))
    assert parsed.defects == ["close-boundary-not-found"]


def test_bad_base64() -> None:
    raw = load("bad_base64.eml")
    parsed = parse_message(raw)
    assert parsed.text == "Line one.\nLine two.\n"  # the stray characters are skipped
    assert parsed.attachments == [
        AttachmentInfo("2", "blob.bin", "application/octet-stream", 6, "", False)
    ]
    assert extract_part(raw, "2")[0] == b"ABCDEF"  # one dangling character dropped
    assert parsed.defects == ["bad-base64"]


def test_unknown_charset_falls_back_to_utf8() -> None:
    parsed = parse_message(load("unknown_charset.eml"))
    assert parsed.subject == "Café menu"
    assert parsed.text == "Café crème: 3,50 €\n"
    assert parsed.defects == ["unknown-charset"]


def test_no_headers_at_all() -> None:
    raw = load("body_only.eml")
    parsed = parse_message(raw)
    assert parsed.headers == []
    assert parsed.subject == "" and parsed.message_id == "" and parsed.date is None
    assert parsed.from_address is None and parsed.to == []
    assert parsed.text == "Hello there,\nthis message has no header block at all.\n"
    assert parsed.snippet == "Hello there, this message has no header block at all."
    assert parsed.defects == [
        "missing-header-body-separator",
        "no-headers",
        "missing-from",
        "missing-date",
        "missing-subject",
        "missing-message-id",
    ]


def test_headers_only_without_body() -> None:
    raw = load("headers_only.eml")
    assert not raw.endswith(b"\n")
    parsed = parse_message(raw)
    assert parsed.subject == "Cron <root@host> /usr/local/bin/backup"
    assert parsed.from_address == Address("Cron Daemon", "cron@example.com")  # from the comment
    assert parsed.date == datetime(2025, 3, 15, 3, 0, 1, tzinfo=UTC)
    assert parsed.auto_submitted == "auto-generated"
    assert parsed.headers[-1] == ("Auto-Submitted", "Auto-Generated")
    assert parsed.text == "" and parsed.html is None and parsed.snippet == ""
    assert parsed.attachments == []
    assert parsed.defects == []


def test_nul_bytes_and_undeclared_8bit() -> None:
    parsed = parse_message(load("nul_8bit.eml"))
    assert parsed.subject == "Café menu"
    assert parsed.text == "Menü du jour: crème brûlée “fraîche”\n"  # windows-1252 guessed
    assert parsed.defects == ["8bit-header", "nul-bytes"]
    assert_storable(parsed)


def test_html_only_with_meta_charset() -> None:
    parsed = parse_message(load("html_only.eml"))
    assert parsed.html is not None and "Thanks for your order – it ships today." in parsed.html
    assert parsed.text == (
        "Thanks for your order – it ships today.\n\nItem Price\nCafé mug €12\n\n"
        "Questions? Reply here.\nThe Shop"
    )
    assert parsed.snippet == (
        "Thanks for your order – it ships today. Item Price Café mug €12 Questions? Reply here. "
        "The Shop"
    )
    assert parsed.date == datetime(2025, 3, 17, 12, 0, tzinfo=UTC)
    assert parsed.defects == []


def test_threading_and_automation_headers() -> None:
    parsed = parse_message(load("threading.eml"))
    assert parsed.subject == "[dev-list] RE: AW: Fwd: Release planning"
    assert normalize_subject(parsed.subject) == "release planning"
    assert parsed.sender == Address("", "owner-list@lists.example.com")
    assert parsed.reply_to == [
        Address("", "list@lists.example.com"),
        Address("Author", "author@example.com"),
    ]
    assert parsed.to == []  # undisclosed-recipients:;
    assert parsed.bcc == [Address("", "hidden@example.org")]
    assert parsed.date == datetime(2025, 3, 18, 9, 30, tzinfo=UTC)  # no zone: UTC
    assert parsed.message_id == "reply-57@example.com"  # no angle brackets in the header
    assert parsed.in_reply_to == "ref56@example.com"
    # ref1..ref55, a repeated ref3, then ref56: deduplicated, the last 50 kept.
    assert parsed.references == [f"ref{i}@example.com" for i in range(7, 57)]
    assert parsed.auto_submitted == "auto-replied"
    assert parsed.list_unsubscribe == "<mailto:leave@lists.example.com>"
    assert parsed.defects == ["long-header"]  # References is one 1,300-character line


def test_multipart_without_its_boundary_shows_the_body() -> None:
    parsed = parse_message(load("missing_start_boundary.eml"))
    assert parsed.text == "Just some text where parts should be.\n"
    assert parsed.attachments == []
    assert parsed.defects == ["start-boundary-not-found"]


def test_calendar_invitation_is_an_attachment_and_enriched_text_is_not() -> None:
    raw = load("invite.eml")
    parsed = parse_message(raw)
    assert parsed.text == "You have been invited to Standup."
    assert parsed.html == "<p>You have been invited to <b>Standup</b>.</p>"
    assert parsed.attachments == [
        AttachmentInfo("4", "attachment-4", "text/calendar", 85, "", False)
    ]
    assert extract_part(raw, "4")[0].startswith(b"BEGIN:VCALENDAR\nMETHOD:REQUEST\n")


def test_mbox_envelope_cr_only_and_uuencode() -> None:
    raw = load("mbox_uuencode.eml")
    assert b"\n" not in raw
    parsed = parse_message(raw)
    assert parsed.headers[0] == ("From", "sender@example.com")  # the envelope line is skipped
    assert parsed.subject == "Old school"
    assert parsed.text == "See notes."
    assert parsed.attachments == [AttachmentInfo("2", "notes.txt", "text/plain", 16, "", False)]
    assert extract_part(raw, "2") == (b"uuencoded notes\n", "text/plain", "notes.txt")
    assert parsed.defects == []


# --- Generated hostile messages ---------------------------------------------------------


def nested_message(depth: int) -> bytes:
    # Boundary "level1" is a prefix of "level10" and "level100": only whole lines count.
    opens, closes = [], []
    for level in range(1, depth + 1):
        boundary = b"level%d" % level
        opens.append(
            b'Content-Type: multipart/mixed; boundary="%s"\r\n\r\n--%s\r\n' % (boundary, boundary)
        )
        closes.append(b"\r\n--%s--\r\n" % boundary)
    head = b"From: deep@example.com\r\nSubject: Deep\r\nMessage-ID: <deep@example.com>\r\n"
    leaf = b"Content-Type: text/plain\r\n\r\nbottom of the well"
    return b"".join([head, *opens, leaf, *reversed(closes)])


def test_deep_nesting_is_cut_at_32_levels() -> None:
    raw = nested_message(100)
    parsed = parse_message(raw)
    opaque_path = ".".join(["1"] * 32)
    [info] = parsed.attachments
    assert info.path == opaque_path
    assert info.content_type == "multipart/mixed"
    assert info.filename == f"attachment-{opaque_path}"
    assert parsed.text == ""
    assert parsed.defects == ["max-depth", "missing-date"]
    data, content_type, _ = extract_part(raw, opaque_path)
    assert data.startswith(b'Content-Type: multipart/mixed; boundary="level33"\r\n')
    assert data.endswith(b"--level33--\r\n")
    assert len(data) == info.size
    # The opaque part is a MIME entity of its own and can be opened the same way.
    inner = parse_message(data)
    assert inner.attachments[0].path == opaque_path
    assert extract_part(data, opaque_path)[0].startswith(
        b'Content-Type: multipart/mixed; boundary="level65"'
    )


def test_absurd_nesting_stays_fast_and_safe() -> None:
    parsed = parse_message(nested_message(5000))
    assert parsed.subject == "Deep"
    assert [a.path.count(".") for a in parsed.attachments] == [31]


def test_one_megabyte_header_line() -> None:
    raw = (
        b"From: a@example.com\r\nX-Filler: "
        + b"x" * 1_000_000
        + b"\r\nSubject: After the long line\r\nMessage-ID: <long@example.com>\r\n\r\nBody\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.subject == "After the long line"
    assert parsed.message_id == "long@example.com"
    assert parsed.headers[1] == ("X-Filler", "x" * 1_000_000)
    assert parsed.text == "Body\n"
    assert parsed.defects == ["long-header", "missing-date"]


def test_one_megabyte_subject_and_recipient_list() -> None:
    recipients = b"".join(b"User %d <user%d@Example.com>, " % (i, i) for i in range(40_000))
    raw = b"Subject: " + b"=?utf-8?q?a?= " * 75_000 + b"\r\nTo: " + recipients + b"\r\n\r\nx"
    parsed = parse_message(raw)
    assert parsed.subject == "a" * 75_000
    assert normalize_subject(parsed.subject) == "a" * 75_000
    assert len(recipients) > 1_000_000
    assert parsed.to[0] == Address("User 0", "user0@example.com")
    # Only the first MAX_ADDRESS_HEADER characters are read, cut after a whole address.
    cut = recipients.rfind(b",", 0, MAX_ADDRESS_HEADER)
    assert len(parsed.to) == recipients[:cut].count(b",") + 1 == 1992
    assert parsed.to[-1] == Address(
        f"User {len(parsed.to) - 1}", f"user{len(parsed.to) - 1}@example.com"
    )
    assert "long-header" in parsed.defects


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\r",
        b"\n\n\n",
        b"\x00" * 1000,
        bytes(range(256)) * 4,
        b"Subject: x",
        b":\n\n",
        b"From \n",
        b" continuation first\nSubject: x\n\nbody",
        b"Content-Type: multipart/mixed\n\nno boundary parameter",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x--",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\n--x\n--x--",
        b'Content-Type: multipart/mixed; boundary=""\n\n--\n',
        b"Content-Type: text/plain; charset=base64\n\nbytes codec as charset",
        b"Content-Type: text/plain; charset=utf-7\n\n+2AA-",
        b"Content-Type: text/plain; charset*0*=utf-8''x; filename*99999999999999=a\n\nz",
        b"Content-Type: text/html\n\n<script>never closed",
        b"Content-Transfer-Encoding: base64\n\n=",
        b"Content-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=",
        b"Content-Transfer-Encoding: x-uuencode\n\nno begin line",
        b"Content-Transfer-Encoding: gzip\n\nunknown encoding",
        b"Content-Type: message/rfc822\n\n",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\nMessage-ID: <" + b"a" * 400 + b">\n\n",
        b"From: =?utf-8?b?!!!?= <a@b>, =?bogus?q?x?=, \xff\xfe <\xc3\xa9@EXAMPLE.com>\n\n",
        b"Subject: =?utf-8?q?=00nul?= \x00\n\n",
    ],
)
def test_malformed_input_never_raises(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert parsed.size == len(raw)
    assert_storable(parsed)
    for info in parsed.attachments:
        assert len(extract_part(raw, info.path)[0]) == info.size


def test_malformed_details() -> None:
    parsed = parse_message(b"Date: Mon, 99 Foo 99999\nMessage-ID: <" + b"a" * 400 + b">\n\n")
    assert parsed.date is None and "bad-date" in parsed.defects
    assert parsed.message_id == "a" * 255
    parsed = parse_message(b"From: \xff\xfe <\xc3\xa9@EXAMPLE.com>\n\n")
    assert parsed.from_address == Address("ÿþ", "é@example.com")
    assert "8bit-header" in parsed.defects
    parsed = parse_message(b"Content-Type: text/plain; charset=base64\n\nabc")
    assert parsed.text == "abc" and "unknown-charset" in parsed.defects
    assert parse_message(b"Date: Tue, 1 Apr 2025 10:00:00 -0000\n\n").date == datetime(
        2025, 4, 1, 10, tzinfo=UTC
    )
    assert parse_message(bytearray(b"Subject: from a bytearray\n\n")).subject == "from a bytearray"
    assert parse_message(memoryview(b"Subject: view\n\n")).subject == "view"


def mutations(raw: bytes, rng: random.Random) -> list[bytes]:
    found = []
    for _ in range(12):
        data = bytearray(raw or b"x")
        kind = rng.randrange(6)
        if kind == 0:
            data = data[: rng.randrange(len(data) + 1)]
        elif kind == 1:
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(len(data))] = rng.choice(b'\x00\r\n-=:;"<>?\x80\xff \t')
        elif kind == 2:
            start = rng.randrange(len(data))
            data[start:start] = data[start : start + rng.randrange(1, 400)]
        elif kind == 3:
            del data[rng.randrange(len(data)) : rng.randrange(len(data) + 1)]
        elif kind == 4:
            data = bytearray(bytes(data).replace(b"\r", b"").replace(b"\n", b"\r"))
        else:
            data = bytearray(bytes(data).replace(b"--", b"--" * rng.randrange(3)))
        found.append(bytes(data))
    return found


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.stem)
def test_mutated_fixtures_never_raise(path: Path) -> None:
    rng = random.Random(path.stem)
    for raw in [path.read_bytes(), *mutations(path.read_bytes(), rng)]:
        parsed = parse_message(raw)
        assert_storable(parsed)
        for info in parsed.attachments:
            data, content_type, filename = extract_part(raw, info.path)
            assert (len(data), content_type, filename) == (
                info.size,
                info.content_type,
                info.filename,
            )
            if info.content_id:
                assert find_part_by_content_id(raw, info.content_id) is not None


def test_extract_part_missing_paths_raise_key_error() -> None:
    single = load("plain_ascii.eml")
    assert extract_part(single, "1")[1:] == ("text/plain", "attachment-1")
    for raw, path in [(single, "2"), (single, "1.1"), (single, ""), (single, "0"), (b"", "x")]:
        with pytest.raises(KeyError):
            extract_part(raw, path)


# --- Header helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello  World", "hello world"),
        ("Re: Re: hello", "hello"),
        ("RE[2]: [list] Fwd: Hello\tWorld ", "hello world"),
        ("AW: WG: Antw: SV: VS: Fw: x", "x"),
        ("[PATCH v2] Re: fix", "fix"),
        ("Re : spaced colon", "spaced colon"),
        ("Re(3): y", "y"),
        ("回复：你好", "你好"),
        ("Reply: not a prefix", "reply: not a prefix"),
        ("Tea: rea: is not re:", "tea: rea: is not re:"),
        ("Fwd:Re:x", "x"),
        ("Re:", ""),
        ("Straße", "strasse"),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("x =?utf-8?q?a?= y", "x a y"),
        ("=?utf-8?q?a?=\r\n =?iso-8859-1?q?=E9?=", "aé"),
        ("=?utf-8?b?4oCU?==?utf-8?b?4oCU?=", "——"),
        ("=?UTF-8?B?5pel5pys6Kqe?= =?UTF-8?B?44OG44K544OI?=", "日本語テスト"),
        ("=?utf-8*en?q?language_tag?=", "language tag"),
        ("=?utf-8?b?w6k?=", "é"),  # missing padding
        ("=?x-unknown?q?caf=C3=A9?=", "café"),
        ("=?windows-1252?q?=93quoted=94?=", "“quoted”"),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("=?utf-8?z?bad-encoding?=", "=?utf-8?z?bad-encoding?="),
        ("caf\udce9", "café"),  # an 8-bit byte the parser kept as a surrogate escape
        ("a\x00b", "ab"),
        ("", ""),
    ],
)
def test_decode_header_value(value: str, expected: str) -> None:
    assert decode_header_value(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        '"Alice Example" <alice@Example.COM>',
        "Bob <bob@example.org>, carol@example.net",
        "=?utf-8?q?J=C3=BCrgen?= <j@example.de>",
        "a@b, , c@d,",
        '"Doe, John" <j@x>, "" <e@f>',
        "Name<a@b>",
        "Group: a@b, c@d;",
        'a@b (Bob), "Q\\"x" <q@x>, x@y',
        "Bob <b@c> (x), plain@x",
        "undisclosed-recipients:;",
        "",
    ],
)
def test_address_fast_path_agrees_with_getaddresses(value: str) -> None:
    def meaningful(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(" ".join(name.split()), address) for name, address in pairs if address]

    assert meaningful(_address_pairs(value)) == meaningful(getaddresses([value]))


def test_snippet_skips_quotes_and_stops_at_200_characters() -> None:
    body = "> quoted first\n\n  Actual   reply\there.\n>> more quote\n" + "word " * 100
    raw = b"Subject: s\n\n" + body.encode()
    snippet = parse_message(raw).snippet
    assert snippet == ("Actual reply here. " + " ".join(["word"] * 100))[:200].rstrip()
    assert len(snippet) == 200 and snippet.endswith("word w")


def test_subject_is_collapsed_so_unprefixed_subjects_normalize_to_themselves() -> None:
    parsed = parse_message(b"Subject: Weekly \t digest\r\n  for  March\r\n\r\n")
    assert parsed.subject == "Weekly digest for March"
    assert normalize_subject(parsed.subject) == parsed.subject.casefold().strip()


def test_huge_html_only_body_is_converted_up_to_a_limit() -> None:
    html = "<p>" + "word " * 200_000 + "</p>"
    parsed = parse_message(b"Content-Type: text/html\n\n" + html.encode())
    assert parsed.html == html
    assert parsed.text == " ".join(html[3:HTML_TEXT_LIMIT].split())
    assert len(parsed.text) == HTML_TEXT_LIMIT - len("<p>")


def test_html_to_text() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>T</title><style>p { color: red; }</style></head>"
        "<body><h1>Top stories</h1><ul><li>Rust &ndash; maybe</li><li>Tea</li></ul>"
        '<p>Read <a href="x">more</a>&nbsp;&amp; enjoy.</p><script>alert(1)</script>'
        "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>"
        "x<br>y<br><br>z</body></html>"
    )
    assert html_to_text(html) == (
        "Top stories\n\n- Rust – maybe\n- Tea\n\nRead more & enjoy.\n\na b\nc d\n\nx\ny\n\nz"
    )
    assert html_to_text("<head><meta charset=utf-8>Broken head text<p>para</p>") == (
        "Broken head text\n\npara"
    )
    assert html_to_text("<p>unclosed <b>bold</b>&amp &lt;tag&gt; &#8212; &#x1F600;") == (
        "unclosed bold& <tag> — 😀"
    )
    assert html_to_text("\u200c\u034f&zwnj; preheader<div>Hi</div>") == "preheader\nHi"
    assert html_to_text("<style>never closed") == ""
    assert html_to_text("") == ""


def test_package_is_pure() -> None:
    """No Django (or anything of the project's) inside the parser."""
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith("django"), (path.name, name)
                assert not name.startswith("mailcore.") or name.startswith("mailcore.mime")


def test_parsed_values_are_frozen() -> None:
    parsed = parse_message(load("plain_ascii.eml"))
    with pytest.raises(AttributeError):
        parsed.subject = "changed"  # type: ignore[misc]
    assert parsed.from_address is not None
    assert parsed.date is not None and parsed.date.tzinfo == timezone(timedelta(hours=1))
