"""Bounce parser against the Sisimai sample corpus, plus per-rule unit tests.

No database: run with `pytest -p no:django tests/mailcore/test_bounces_corpus.py -q -s`.
"""

from __future__ import annotations

import json
import time

import pytest

from mailcore.bounces import BounceReport, classify_reason, parse_bounce, to_json_line
from tests.support import BOUNCE_CORPUS

SAME_REASON = {"exceedlimit": "emailtoolarge", "mesgtoobig": "emailtoolarge"}
# Set just below the figures reached when the parser was written; raise them as it improves.
FLOORS = {"kind": 0.99, "address": 0.98, "permanent": 0.97, "reason": 0.87, "status": 0.96}


def _reason(name: str | None) -> str | None:
    return SAME_REASON.get(name, name) if name else name


def test_corpus_accuracy() -> None:
    cases = [json.loads(line) for line in (BOUNCE_CORPUS / "cases.jsonl").read_text().splitlines()]
    blobs = [(BOUNCE_CORPUS / case["file"]).read_bytes() for case in cases]
    started = time.perf_counter()
    reports = [parse_bounce(blob) for blob in blobs]
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    for blob in blobs:
        parse_bounce(blob)
    warm_elapsed = time.perf_counter() - started

    hits = dict.fromkeys(FLOORS, 0)
    totals = dict.fromkeys(FLOORS, 0)
    for case, report in zip(cases, reports, strict=True):
        totals["kind"] += 1
        hits["kind"] += report.kind == case["kind"]
        for index, expected in enumerate(case["recipients"]):
            by_address = [r for r in report.recipients if r.address == expected["address"]]
            got = by_address[0] if by_address else None
            if got is None and index < len(report.recipients):
                got = report.recipients[index]
            for key in ("address", "reason", "status"):
                totals[key] += 1
            hits["address"] += got is not None and got.address == expected["address"]
            hits["reason"] += got is not None and _reason(got.reason) == _reason(expected["reason"])
            hits["status"] += (got.status if got else None) == expected["status"]
            if expected["permanent"] is not None:
                totals["permanent"] += 1
                hits["permanent"] += got is not None and got.permanent == expected["permanent"]
        json.loads(to_json_line(case["file"], report))

    accuracy = {key: hits[key] / totals[key] for key in FLOORS}
    print()
    print(f"bounce corpus: {len(cases)} messages")
    for key, value in accuracy.items():
        print(f"  {key:<10} {value:.3f} ({hits[key]}/{totals[key]})")
    print(
        f"  speed      {len(cases) / elapsed:.0f} msg/s cold, {len(cases) / warm_elapsed:.0f} warm"
    )
    for key, floor in FLOORS.items():
        assert accuracy[key] >= floor, f"{key} accuracy {accuracy[key]:.3f} fell below {floor}"


POSTFIX_DSN = b"""\
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: sender@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

This is the mail system at host mx.example.org.

<alice@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1
    <alice@example.net>: Recipient address rejected: User unknown (in reply to RCPT TO
    command)

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; Alice@Example.net
Original-Recipient: rfc822;alice@example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.net>: Recipient address
    rejected: User unknown (in reply to RCPT TO command)

--B1
Content-Type: message/rfc822

From: sender@example.com
To: alice@example.net
Subject: Hello
Message-ID: <abc123@example.com>
X-Mailroom-Token: tok-42

Hi
--B1--
"""

EXIM_TEXT = b"""\
From: Mail Delivery System <Mailer-Daemon@mail.example.org>
To: sender@example.com
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: bob@example.net
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  bob@example.net
    host mx.example.net [192.0.2.7]
    SMTP error from remote mail server after RCPT TO:<bob@example.net>:
    552 5.2.2 Mailbox full

------ This is a copy of the message, including all the headers. ------

From: sender@example.com
To: bob@example.net
Subject: Hi
Message-ID: <m-1@example.com>

Hello
"""

ARF_REPORT = b"""\
From: fbl@isp.example
To: abuse@example.com
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

This is an email abuse report.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Rcpt-To: Carol@isp.example
Source-IP: 192.0.2.9

--F
Content-Type: message/rfc822

From: news@example.com
To: carol@isp.example
Subject: Offer
Message-ID: <n-7@example.com>

Buy
--F--
"""

VACATION = b"""\
From: Dave <dave@example.net>
To: sender@example.com
Subject: Out of Office: Hello
Auto-Submitted: auto-replied
Message-ID: <v-1@example.net>

I am away until Monday with limited access to e-mail.
"""

NORMAL = b"""\
From: Erin <erin@example.net>
To: sender@example.com
Subject: Lunch tomorrow?
Message-ID: <x-1@example.net>

Shall we meet at noon?
"""


def test_postfix_dsn() -> None:
    report = parse_bounce(POSTFIX_DSN)
    assert report.kind == "bounce"
    assert len(report.recipients) == 1
    recipient = report.recipients[0]
    assert recipient.address == "alice@example.net"
    assert recipient.status == "5.1.1"
    assert recipient.reason == "userunknown"
    assert recipient.permanent is True
    assert recipient.remote_mta == "mx.example.net"
    assert recipient.diagnostic == (
        "550 5.1.1 <alice@example.net>: Recipient address rejected: User unknown "
        "(in reply to RCPT TO command)"
    )
    assert report.original_message_id == "abc123@example.com"
    assert report.original_headers["x-mailroom-token"] == "tok-42"
    assert report.original_headers["subject"] == "Hello"
    assert report.verp_token == ""


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_exim_text_bounce_any_line_ending(newline: bytes) -> None:
    report = parse_bounce(EXIM_TEXT.replace(b"\n", newline))
    assert report.kind == "bounce"
    assert [(r.address, r.status, r.reason, r.permanent) for r in report.recipients] == [
        ("bob@example.net", "5.2.2", "mailboxfull", True)
    ]
    assert report.recipients[0].remote_mta == "mx.example.net"
    assert report.original_message_id == "m-1@example.com"


def test_arf_abuse_report() -> None:
    report = parse_bounce(ARF_REPORT)
    assert report.kind == "complaint"
    assert [
        (r.address, r.reason, r.feedback_type, r.status, r.permanent) for r in report.recipients
    ] == [("carol@isp.example", "feedback", "abuse", None, None)]
    assert report.original_message_id == "n-7@example.com"


def test_vacation_auto_reply() -> None:
    report = parse_bounce(VACATION)
    assert report.kind == "auto_reply"
    assert [(r.address, r.reason, r.status, r.permanent) for r in report.recipients] == [
        ("dave@example.net", "vacation", None, None)
    ]


def test_normal_mail_is_not_a_bounce() -> None:
    assert parse_bounce(NORMAL) == BounceReport(kind="not_bounce", recipients=[])


@pytest.mark.parametrize(
    "raw", [b"", b"\x00\xff\xfe", b"Content-Type: multipart/report\n\n--", b"x" * 5000]
)
def test_garbage_never_raises(raw: bytes) -> None:
    assert parse_bounce(raw).kind in {
        "bounce",
        "complaint",
        "auto_reply",
        "delivered",
        "not_bounce",
    }


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason"),
    [
        (
            "5.1.1",
            "550 5.1.1 <a@b.example>: Recipient address rejected: User unknown",
            "userunknown",
        ),
        ("5.2.2", "552 5.2.2 Mailbox full", "mailboxfull"),
        (
            None,
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
            "blocked",
        ),
        ("5.7.26", "550 5.7.26 Unauthenticated email is not accepted", "authfailure"),
        ("4.4.7", "Message expired", "expired"),
        (None, "552 Message size exceeds fixed maximum message size", "emailtoolarge"),
        ("5.1.2", "Host or domain name not found", "hostunknown"),
        ("2.1.5", "250 2.1.5 Ok", "delivered"),
        (None, "", "undefined"),
    ],
)
def test_classify_reason(status: str | None, diagnostic: str, reason: str) -> None:
    assert classify_reason(status, diagnostic) == reason


def test_to_json_line_shape() -> None:
    line = json.loads(to_json_line("x.eml", parse_bounce(POSTFIX_DSN)))
    assert line == {
        "file": "x.eml",
        "kind": "bounce",
        "recipients": [
            {
                "address": "alice@example.net",
                "status": "5.1.1",
                "reason": "userunknown",
                "permanent": True,
                "diagnostic": "550 5.1.1 <alice@example.net>: Recipient address rejected: "
                "User unknown (in reply to RCPT TO command)",
            }
        ],
    }
